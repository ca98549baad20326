/**
 * Declared files without a host: the file's checks (paths, modes, content and source, limits),
 * what a source may be, the changes diff finds and how the plan words them, and that the
 * content never reaches the desired state's data (what plans and the ledger serialise).
 */
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exportLxc } from "../export.js";
import { liveContainer } from "../lxc.testing.js";
import type { DesiredContainer, LiveContainer, LxcSection } from "../types.js";
import { checkFiles, modeOf, pathProblem, sha256 } from "./check.js";
import { createdFilesWords, describeFile, fileChanges } from "./diff.js";
import { filesTagOf, hashSource, sourceRefusal } from "./prepare.js";
import {
  type DesiredFile,
  type LiveFile,
  maxContentBytes,
  maxSourceBytes,
  originOf,
} from "./types.js";

const base = "/plugins/lxc/containers/0";
const dir = mkdtempSync(join(tmpdir(), "opdf-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checked(specs: Parameters<typeof checkFiles>[0]) {
  const problems: string[] = [];
  const files = checkFiles(
    specs,
    base,
    { add: (path, message) => problems.push(`${path}: ${message}`) },
    (path) => (path.startsWith("/") ? path : join(dir, path)),
  );
  return { files, problems };
}

describe("a declared file's path", () => {
  it("must be absolute, normalised, not / and free of NUL", () => {
    expect(pathProblem("/etc/motd")).toBeUndefined();
    expect(pathProblem("/etc/.hidden..file")).toBeUndefined();
    expect(pathProblem("etc/motd")).toContain("is not absolute");
    expect(pathProblem("/")).toContain("root directory");
    expect(pathProblem("//")).toContain("root directory");
    expect(pathProblem("/etc/../root/x")).toContain('has a ".." component');
    expect(pathProblem("/etc/./motd")).toBe(
      '"/etc/./motd" is not normalised (an empty or "." component): write it as /etc/motd',
    );
    expect(pathProblem("/etc//motd")).toContain("write it as /etc/motd");
    expect(pathProblem("/etc/")).toContain("is not a directory");
    expect(pathProblem("/etc/mo\0td")).toContain("NUL");
  });
});

describe("a declared file's mode", () => {
  it("is three octal digits, with or without a leading 0, written as four", () => {
    expect(modeOf("644")).toBe("0644");
    expect(modeOf("0600")).toBe("0600");
    for (const bad of ["999", "4755", "0o644", "rw-r--r--", "", "07777"])
      expect(modeOf(bad)).toBeUndefined();
  });
});

describe("checkFiles", () => {
  it("defaults mode 0644 and owner 0:0, and hashes content as UTF-8", () => {
    const { files, problems } = checked([{ path: "/etc/motd", content: "héllo\n" }]);
    expect(problems).toEqual([]);
    const bytes = Buffer.from("héllo\n", "utf8");
    expect(files).toEqual([
      {
        path: "/etc/motd",
        ensure: "present",
        want: { sha256: sha256(bytes), size: bytes.length, mode: "0644", uid: 0, gid: 0 },
      },
    ]);
  });

  it("keeps the content out of the data plans and the ledger serialise", () => {
    const { files } = checked([{ path: "/etc/motd", content: "top secret", mode: "600", uid: 3 }]);
    const file = files[0] as DesiredFile;
    expect(JSON.stringify(file)).not.toContain("top secret");
    expect(JSON.stringify({ ...file })).not.toContain("top secret");
    expect(originOf(file).bytes?.toString()).toBe("top secret");
    expect(originOf(file).at).toBe(`${base}/files/0`);
  });

  it("resolves a relative source; its hash comes later, from prepare", () => {
    const { files } = checked([{ path: "/etc/a", source: "payload.txt", gid: 9 }]);
    expect(originOf(files[0] as DesiredFile).source).toBe(join(dir, "payload.txt"));
    expect(files[0]?.want).toMatchObject({ mode: "0644", uid: 0, gid: 9 });
  });

  it("accepts content of exactly 1 MiB and refuses a byte more, naming the limit", () => {
    expect(checked([{ path: "/a", content: "x".repeat(maxContentBytes) }]).problems).toEqual([]);
    // Two bytes a character in UTF-8: counted in bytes, not characters.
    const { files, problems } = checked([
      { path: "/a", content: "é".repeat(maxContentBytes / 2 + 1) },
    ]);
    expect(files).toEqual([]);
    expect(problems).toEqual([
      `${base}/files/0/content: the content is ${maxContentBytes + 2} bytes, more than the limit of ${maxContentBytes} (1 MiB): put it in a host file and name it as "source"`,
    ]);
  });

  it("reports every problem of every entry, each at its own path, and keeps the good ones", () => {
    const { files, problems } = checked([
      { path: "/ok", content: "" },
      { path: "rel", content: "a", source: "b" },
      { path: "/none" },
      { path: "/ok", content: "again" },
      { path: "/gone", ensure: "absent", mode: "0600", uid: 1 },
      { path: "/m", content: "a", mode: "888" },
      { path: "/n", source: "a\0b" },
    ]);
    expect(files.map((file) => file.path)).toEqual(["/ok"]);
    expect(problems).toEqual([
      `${base}/files/1/path: "rel" is not absolute: write the full path, from /`,
      `${base}/files/1: give either "content" (the text) or "source" (a host file), not both`,
      `${base}/files/2: a file needs "content" (the text) or "source" (a host file to copy)`,
      `${base}/files/3/path: /ok is also declared by ${base}/files/0`,
      `${base}/files/4/mode: a file with "ensure": "absent" is deleted: drop "mode", "uid"`,
      `${base}/files/5/mode: "888" is not a permission mode: three octal digits, such as "0644" or "600"`,
      `${base}/files/6/source: a path with a NUL character cannot be opened`,
    ]);
  });

  it("takes an absent file with its path alone", () => {
    const { files, problems } = checked([{ path: "/etc/old", ensure: "absent" }]);
    expect(problems).toEqual([]);
    expect(files).toEqual([{ path: "/etc/old", ensure: "absent" }]);
  });

  it("lists the paths in the tag sorted, so the order in the file is no change", () => {
    const { files } = checked([
      { path: "/z", content: "" },
      { path: "/a b", ensure: "absent" },
    ]);
    expect(filesTagOf(files)).toBe('["/a b","/z"]');
  });
});

describe("a declared file's source", () => {
  const opDirs = ["/var/lib/op", join(dir, "ledger")];

  it("is refused inside op's own directories and /proc, /sys, /dev", () => {
    expect(sourceRefusal("/var/lib/op/ledger.key", opDirs)).toContain("is op's own");
    expect(sourceRefusal("/proc/1/environ", opDirs)).toBe(
      "/proc/1/environ is under /proc, not a file op copies",
    );
    expect(sourceRefusal("/dev/zero", opDirs)).toContain("under /dev");
    expect(sourceRefusal("/srv/files/motd", opDirs)).toBeUndefined();
  });

  it("is hashed from the file; a symlink is judged by where it leads", async () => {
    const payload = join(dir, "payload.bin");
    writeFileSync(payload, "bytes\n");
    expect(await hashSource(payload, opDirs)).toEqual({
      sha256: sha256(Buffer.from("bytes\n")),
      size: 6,
    });
    const link = join(dir, "innocent");
    symlinkSync("/proc/self/status", link);
    await expect(hashSource(link, opDirs)).rejects.toThrow(/is under \/proc/);
  });

  it("must exist, be a regular file and be at most 64 MiB", async () => {
    await expect(hashSource(join(dir, "missing"), opDirs)).rejects.toThrow(
      `source ${join(dir, "missing")} does not exist on this host`,
    );
    await expect(hashSource(dir, opDirs)).rejects.toThrow("is a directory, not a regular file");
    const big = join(dir, "big");
    writeFileSync(big, "");
    truncateSync(big, maxSourceBytes + 1);
    await expect(hashSource(big, opDirs)).rejects.toThrow(
      `is ${maxSourceBytes + 1} bytes, more than the limit of ${maxSourceBytes}`,
    );
  });
});

describe("fileChanges and the plan's words", () => {
  const want = { sha256: "a".repeat(64), size: 12, mode: "0640", uid: 5, gid: 6 };
  const present: DesiredFile = { path: "/etc/f", ensure: "present", want };
  const absent: DesiredFile = { path: "/etc/g", ensure: "absent" };
  const container = (files: DesiredFile[]) => ({ files }) as unknown as DesiredContainer;
  const live = (files?: Record<string, LiveFile | null>) =>
    (files === undefined ? {} : { files }) as unknown as LiveContainer;
  const same: LiveFile = { type: "file", ...want };

  it("finds nothing when content, mode and owner match, or an absent file is missing", () => {
    expect(
      fileChanges(container([present, absent]), live({ "/etc/f": same, "/etc/g": null })),
    ).toEqual([]);
  });

  it("creates a missing file and names it by size, hash, mode and owner", () => {
    const changes = fileChanges(container([present]), live({ "/etc/f": null }));
    expect(changes).toEqual([{ path: "files./etc/f", after: want }]);
    expect(describeFile(changes[0] as never)).toBe(
      "create file /etc/f (12 B, sha256 aaaaaaaaaaaa, 0640, 5:6)",
    );
  });

  it("names only what differs", () => {
    const other = { ...same, sha256: "b".repeat(64), size: 2048, mode: "0777", uid: 1 };
    const [change] = fileChanges(container([present]), live({ "/etc/f": other }));
    expect(describeFile(change as never)).toBe(
      "change file /etc/f: content 2.0 KiB sha256 bbbbbbbbbbbb → 12 B sha256 aaaaaaaaaaaa; mode 0777 → 0640; owner 1:6 → 5:6",
    );
    const [modeOnly] = fileChanges(
      container([present]),
      live({ "/etc/f": { ...same, mode: "0600" } }),
    );
    expect(describeFile(modeOnly as never)).toBe("change file /etc/f: mode 0600 → 0640");
  });

  it("replaces another kind of entry, and deletes an absent file that is there", () => {
    const directory: LiveFile = { type: "directory", mode: "0755", uid: 0, gid: 0 };
    const [replace, remove] = fileChanges(
      container([present, absent]),
      live({ "/etc/f": directory, "/etc/g": same }),
    );
    expect(describeFile(replace as never)).toBe(
      "replace /etc/f, a directory, 0755, 0:0, with a file (12 B, sha256 aaaaaaaaaaaa, 0640, 5:6)",
    );
    expect(remove).toEqual({
      path: "files./etc/g",
      before: { sha256: want.sha256, size: 12, mode: "0640", uid: 5, gid: 6 },
    });
    expect(describeFile(remove as never)).toBe(
      "delete file /etc/g (12 B, sha256 aaaaaaaaaaaa, 0640, 5:6)",
    );
  });

  it("uses prepare's reading only when the query read none, and the query's when it did", () => {
    const seen: DesiredFile = { ...present, seen: same };
    expect(fileChanges(container([seen]), live())).toEqual([]);
    expect(fileChanges(container([seen]), live({ "/etc/f": null }))).toEqual([
      { path: "files./etc/f", after: want },
    ]);
    // Never read at all: nothing is known to be there, so it is written.
    expect(fileChanges(container([present]), live())).toEqual([
      { path: "files./etc/f", after: want },
    ]);
  });

  it("names a new container's first five files, then how many more", () => {
    const files = Array.from({ length: 7 }, (_, i) => ({ ...present, path: `/f${i}` }));
    expect(createdFilesWords(container(files))).toBe(
      `${[0, 1, 2, 3, 4]
        .map((i) => `, writes /f${i} (12 B, sha256 aaaaaaaaaaaa, 0640, 5:6)`)
        .join("")}, and 2 more files (24 B)`,
    );
    expect(createdFilesWords(container([present, absent]))).toBe(
      ", writes /etc/f (12 B, sha256 aaaaaaaaaaaa, 0640, 5:6)",
    );
  });

  it("counts the paths of the tag instead of listing them", () => {
    expect(
      describeFile({ path: "config.user.op.files", before: '["/a"]', after: '["/a","/b"]' }),
    ).toBe("declared files to read 1 → 2 (user.op.files)");
    expect(describeFile({ path: "config.user.op.files", after: '["/a"]' })).toBe(
      "declared files to read 0 → 1 (user.op.files)",
    );
  });

  it("leaves other changes to the container's own words", () => {
    expect(describeFile({ path: "config.limits.cpu", before: "1", after: "2" })).toBeUndefined();
  });
});

describe("op export of a container with declared files", () => {
  it("writes no files and says which paths to declare again", () => {
    const container = liveContainer("web", {
      config: {
        "user.op.managed": "true",
        "user.op.image": "op-test/busybox",
        "user.op.files": '["/etc/a","/etc/b"]',
      },
    });
    const { section, notes } = exportLxc(
      { containers: [container], bridges: {}, aliases: {} },
      { all: false },
    );
    const [spec] = (section as LxcSection).containers ?? [];
    expect(spec?.files).toBeUndefined();
    expect(spec?.config).toBeUndefined();
    expect(notes).toContain(
      'container web: its declared files are not exported (op reads their hashes, not their content); declare them again under "files": /etc/a, /etc/b',
    );
  });
});
