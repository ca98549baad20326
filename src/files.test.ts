import { execFileSync } from "node:child_process";
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { thrown } from "../test/support/errors.js";
import { ensurePrivateDirectory, fileError, readRegularFile, writeFileAtomic } from "./files.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "op-files-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("readRegularFile", () => {
  it("reads a regular file", () => {
    writeFileSync(join(dir, "a"), "hello");
    expect(readRegularFile(join(dir, "a"), { what: "state file" }).toString()).toBe("hello");
  });

  it("refuses a FIFO at once instead of waiting for a writer", () => {
    execFileSync("mkfifo", [join(dir, "fifo")]);
    const error = thrown(() => readRegularFile(join(dir, "fifo"), { what: "state file" }));
    expect(error.message).toContain("is a FIFO, not a regular file");
  });

  it("refuses a character device such as /dev/zero", () => {
    expect(thrown(() => readRegularFile("/dev/zero", { what: "image rootfs" })).message).toBe(
      "/dev/zero: the image rootfs is a character device, not a regular file",
    );
  });

  it("refuses a directory as an ordinary error", () => {
    expect(thrown(() => readRegularFile(dir, { what: "image rootfs" })).message).toContain(
      "is a directory",
    );
  });

  it("states the size limit", () => {
    writeFileSync(join(dir, "big"), "x".repeat(100));
    const error = thrown(() =>
      readRegularFile(join(dir, "big"), { what: "state file", maxBytes: 10 }),
    );
    expect(error.message).toContain("100 bytes, more than the limit of 10");
  });

  it("refuses a symlink where op follows none", () => {
    writeFileSync(join(dir, "target"), "x");
    symlinkSync(join(dir, "target"), join(dir, "link"));
    expect(
      thrown(() => readRegularFile(join(dir, "link"), { what: "key", noFollow: true })).message,
    ).toContain("ELOOP");
  });
});

describe("writeFileAtomic", () => {
  it("replaces a symlink instead of writing through it", () => {
    writeFileSync(join(dir, "victim"), "keep me", { mode: 0o644 });
    symlinkSync(join(dir, "victim"), join(dir, "key.pub"));
    writeFileAtomic(join(dir, "key.pub"), "new", 0o600, "public key");
    expect(readFileSync(join(dir, "victim"), "utf8")).toBe("keep me");
    expect(lstatSync(join(dir, "key.pub")).isFile()).toBe(true);
    expect(statSync(join(dir, "key.pub")).mode & 0o777).toBe(0o600);
  });

  it("names the path when the directory cannot be written", () => {
    const error = thrown(() =>
      writeFileAtomic(join(dir, "missing", "f"), "x", 0o600, "checkpoint"),
    );
    expect(error.code).toBe("file-error");
    expect(error.message).toContain(join(dir, "missing", "f"));
  });
});

describe("ensurePrivateDirectory", () => {
  it("creates 0700 whatever the umask", () => {
    const old = process.umask(0);
    try {
      ensurePrivateDirectory(join(dir, "cache", "nft"), "cache directory");
    } finally {
      process.umask(old);
    }
    expect(statSync(join(dir, "cache", "nft")).mode & 0o777).toBe(0o700);
  });

  it("refuses a directory others can write", () => {
    const shared = join(dir, "shared");
    execFileSync("mkdir", ["-m", "0777", shared]);
    expect(thrown(() => ensurePrivateDirectory(shared, "cache directory")).message).toContain(
      "may be written by others (mode 0777)",
    );
  });
});

describe("fileError", () => {
  it("makes a full disk an ordinary error with the path and a hint", () => {
    const error = fileError(
      Object.assign(new Error("x"), { code: "ENOSPC" }),
      "/var/lib/op/x",
      "cannot write",
    );
    expect(error.code).toBe("file-error");
    expect(error.exitCode).toBe(1);
    expect(error.message).toBe("/var/lib/op/x: cannot write: the file system is full (ENOSPC)");
    expect(error.hint).toContain("free some space");
  });
});
