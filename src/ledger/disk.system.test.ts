/**
 * The ledger, its key and its checkpoint log on a real small tmpfs that is filled up: a full
 * disk is an ordinary error naming the path (never "a bug in op"), never leaves a partial key,
 * and verification still works, reading only.
 */
import { execFileSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { Ledger, type RecordInput } from "./ledger.js";
import { makeTempDir, removeTempDirs } from "./testing.js";

const mounts: string[] = [];

afterEach(async () => {
  for (const dir of mounts.splice(0)) execFileSync("umount", [dir]);
  await removeTempDirs();
});

/** A tmpfs of `kib` KiB, private to root, on a temporary directory (unmounted after the test). */
async function smallTmpfs(kib: number): Promise<string> {
  const dir = await makeTempDir("tmpfs");
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${kib}k,mode=0700`, "opl-tmpfs", dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the file system holding `dir` until it refuses another byte. */
function fill(dir: string): string {
  const filler = join(dir, "filler");
  const fd = openSync(filler, "w");
  try {
    const chunk = Buffer.alloc(4096, 1);
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  for (;;) {
    try {
      writeFileSync(join(dir, `crumb-${Math.random()}`), "x");
    } catch {
      return filler;
    }
  }
}

const step = (n: number): RecordInput => ({
  run: "run-1",
  plugin: "network",
  action: "create",
  target: `br${n}`,
  changes: { note: "x".repeat(400) },
  status: "intent",
});

async function refusal(promise: Promise<unknown>): Promise<OpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpError);
  return error as OpError;
}

/** Every file of a directory with its bytes, to show nothing was written. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir).map((name) => [name, readFileSync(join(dir, name)).toString("base64")]),
  );
}

describe("a full disk", () => {
  it("creating the key: an ordinary error naming it, no key file left, created once there is space", async () => {
    const keys = await smallTmpfs(64);
    const root = await makeTempDir("disk");
    const keyFile = join(keys, "ledger.key");
    const filler = fill(keys);
    const error = await refusal(Ledger.open(join(root, "ledger"), { keyFile }));
    expect(error.code).toBe("file-error");
    expect(error.message).toContain(keyFile);
    expect(error.message).toMatch(/the file system is full \(ENOSPC\)/);
    expect(error.hint).toMatch(/free some space/);
    expect(existsSync(keyFile)).toBe(false);
    expect(readdirSync(keys).filter((name) => name.includes("tmp"))).toEqual([]);

    rmSync(filler);
    const ledger = await Ledger.open(join(root, "ledger"), { keyFile });
    await ledger.append(step(1));
    await ledger.checkpoint();
    await ledger.close();
    expect(statSync(keyFile).size).toBeGreaterThan(40);
  });

  it("recording: an ordinary error naming the ledger, and the records before it kept", async () => {
    const disk = await smallTmpfs(1024);
    const root = await makeTempDir("disk");
    const dir = join(disk, "ledger");
    const keyFile = join(root, "ledger.key");
    const ledger = await Ledger.open(dir, { keyFile });
    await ledger.append(step(1));
    await ledger.checkpoint();
    fill(disk);
    let error: unknown;
    for (let n = 2; n < 2000 && error === undefined; n++) {
      error = await ledger
        .append(step(n))
        .then(() => (n % 20 === 0 ? ledger.checkpoint() : undefined))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    }
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("file-error");
    expect((error as OpError).message).toMatch(/full|ENOSPC/);
    expect((error as OpError).message).toContain(disk);
    await ledger.close().catch(() => {});
  });

  it("verify opens a full ledger read-only and writes nothing to it", async () => {
    const disk = await smallTmpfs(1024);
    const root = await makeTempDir("disk");
    const dir = join(disk, "ledger");
    const keyFile = join(root, "ledger.key");
    const ledger = await Ledger.open(dir, { keyFile });
    for (let n = 1; n <= 30; n++) await ledger.append(step(n));
    await ledger.checkpoint();
    await ledger.close();
    fill(disk);
    const before = snapshot(dir);
    const views = () =>
      readdirSync("/dev/shm").filter((name) => name.startsWith("op-ledger-view-"));
    const viewsBefore = views();

    const reader = await Ledger.open(dir, { keyFile, create: false });
    expect(await reader.verify()).toMatchObject({ ok: true, size: 30, checkpoints: 1 });
    expect((await reader.show(30))?.target).toBe("br30");
    await reader.close();
    expect(snapshot(dir)).toEqual(before);
    expect(views()).toEqual(viewsBefore);
  });
});

describe("a read-only file system", () => {
  it("writing is an ordinary error naming it; verify reads through a view", async () => {
    const disk = await smallTmpfs(1024);
    const root = await makeTempDir("disk");
    const dir = join(disk, "ledger");
    const keyFile = join(root, "ledger.key");
    const ledger = await Ledger.open(dir, { keyFile });
    for (let n = 1; n <= 5; n++) await ledger.append(step(n));
    await ledger.checkpoint();
    await ledger.close();
    execFileSync("mount", ["-o", "remount,ro", disk]);

    const error = await refusal(Ledger.open(dir, { keyFile }));
    expect(error.code).toBe("file-error");
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(/read-only/);
    expect(error.hint).toMatch(/remount the file system read-write/);

    const reader = await Ledger.open(dir, { keyFile, create: false });
    expect(await reader.verify()).toMatchObject({ ok: true, size: 5, checkpoints: 1 });
    await reader.close();
  });
});

describe("an empty key file (left by an older op that ran out of space creating it)", () => {
  it("is recreated while the ledger has no checkpoint", async () => {
    const root = await makeTempDir("disk");
    const keyFile = join(root, "ledger.key");
    writeFileSync(keyFile, "", { mode: 0o600 });
    const ledger = await Ledger.open(join(root, "ledger"), { keyFile });
    await ledger.append(step(1));
    await ledger.checkpoint();
    await ledger.close();
    expect(readFileSync(keyFile, "utf8")).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
  });

  it("is refused once a checkpoint signed by the lost key exists", async () => {
    const root = await makeTempDir("disk");
    const keyFile = join(root, "ledger.key");
    const ledger = await Ledger.open(join(root, "ledger"), { keyFile });
    await ledger.append(step(1));
    await ledger.checkpoint();
    await ledger.close();
    writeFileSync(keyFile, "");
    const error = await refusal(Ledger.open(join(root, "ledger"), { keyFile }));
    expect(error.code).toBe("ledger-corrupt");
    expect(error.message).toMatch(/is empty .* but the ledger has checkpoints signed with it/);
    expect(error.hint).toMatch(/restore .* from a backup/);
    expect(readFileSync(keyFile, "utf8")).toBe("");
  });
});
