/**
 * The directory removal after a container delete (apply.ts removeDirectory): it removes the
 * directory prepare checked, and leaves alone what was put in its place since the plan.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { removeDirectory } from "./apply.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "ops-mut-rm-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function refused(path: string): Promise<OpError> {
  const error = await removeDirectory(path).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof OpError)) throw new Error(`expected an OpError, got ${String(error)}`);
  expect(error.code).toBe("invalid-state");
  expect(error.message).toBe(
    `${path} changed since the plan (it is no longer the directory the container mounted); op did not remove it`,
  );
  // The user is told what to do with the path left behind.
  expect(error.hint).toBe("look at it, remove it by hand if it should go, and run op apply again");
  return error;
}

describe("removeDirectory", () => {
  it("removes the directory and what is in it", async () => {
    const dir = join(root, "data");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "sub", "f"), "x");
    await removeDirectory(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it("does nothing when the directory is already gone", async () => {
    await expect(removeDirectory(join(root, "gone"))).resolves.toBeUndefined();
  });

  it("leaves a symlink put in its place, and what it points to", async () => {
    const target = join(root, "precious");
    mkdirSync(target);
    writeFileSync(join(target, "f"), "x");
    const dir = join(root, "data");
    symlinkSync(target, dir);
    await refused(dir);
    expect(existsSync(join(target, "f"))).toBe(true);
  });

  it("leaves a file put in its place", async () => {
    const dir = join(root, "data");
    writeFileSync(dir, "x");
    await refused(dir);
    expect(existsSync(dir)).toBe(true);
  });

  it("leaves a directory reached through a symlinked parent", async () => {
    mkdirSync(join(root, "real", "data"), { recursive: true });
    symlinkSync(join(root, "real"), join(root, "link"));
    await refused(join(root, "link", "data"));
    expect(existsSync(join(root, "real", "data"))).toBe(true);
  });

  it("reports a path it cannot look at, rather than taking it for gone", async () => {
    writeFileSync(join(root, "file"), "x");
    await expect(removeDirectory(join(root, "file", "data"))).rejects.toThrow(
      /cannot look at the directory to remove/,
    );
  });
});
