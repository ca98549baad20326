/**
 * The host lock, on its source: the child processes below run src/lock.ts bundled by esbuild
 * into a temporary file, not the build in dist/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { acquireLock, holderPid } from "./lock.js";

let dir: string;
let lockPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ophd-lock-"));
  lockPath = join(dir, "op.lock");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

let bundleDir: string;
let lockModule: string;
beforeAll(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), "ophd-lock-bundle-"));
  lockModule = join(bundleDir, "lock.mjs");
  await build({
    entryPoints: [resolve(import.meta.dirname, "lock.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: lockModule,
    logLevel: "silent",
  });
});
afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

/** A process that takes the lock with src/lock.ts, says "held" and keeps it until killed. */
async function holderProcess(path: string): Promise<ChildProcess> {
  const script = `
    const { acquireLock } = await import(${JSON.stringify(lockModule)});
    await acquireLock(${JSON.stringify(path)}, { timeoutSeconds: 10 });
    process.stdout.write("held\\n");
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  await new Promise<void>((done, fail) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("held")) done();
    });
    child.on("exit", (code) => fail(new Error(`the holder exited with ${code}`)));
  });
  return child;
}

async function refusal(options = { timeoutSeconds: 0 }): Promise<OpError> {
  const error = await acquireLock(lockPath, options).then(
    (lock) => {
      lock.release();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpError);
  return error as OpError;
}

describe("acquireLock", () => {
  it("writes our pid for the message, and lets the next run in on release", async () => {
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(holderPid(lockPath)).toBe(process.pid);
    expect((await refusal()).code).toBe("locked");
    lock.release();
    expect(readFileSync(lockPath, "utf8")).toBe("");
    (await acquireLock(lockPath, { timeoutSeconds: 0 })).release();
  });

  it("is not blocked by a live process that merely has its pid in the file (pid reuse)", async () => {
    // The parent of this test runner is alive and is not op: the old pid lock waited for it.
    writeFileSync(lockPath, `${process.ppid}\n`);
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(holderPid(lockPath)).toBe(process.pid);
    lock.release();
  });

  it("fails at once, naming the holder's pid, while another process holds it", async () => {
    const holder = await holderProcess(lockPath);
    const error = await refusal();
    expect(error.code).toBe("locked");
    expect(error.exitCode).toBe(75);
    expect(error.message).toContain(`pid ${holder.pid} holds ${lockPath}`);
    expect(error.hint).toContain("--lock-timeout");
  });

  it("is released by the kernel when its holder is killed with SIGKILL", async () => {
    const holder = await holderProcess(lockPath);
    expect((await refusal()).code).toBe("locked");
    const gone = new Promise((done) => holder.on("exit", done));
    holder.kill("SIGKILL");
    await gone;
    // The holder's pid is still in the file; it does not matter.
    expect(holderPid(lockPath)).toBe(holder.pid);
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(holderPid(lockPath)).toBe(process.pid);
    lock.release();
  });

  it("waits up to the timeout for the holder, and takes the lock when it goes", async () => {
    const holder = await holderProcess(lockPath);
    setTimeout(() => holder.kill("SIGKILL"), 300);
    const started = Date.now();
    const lock = await acquireLock(lockPath, { timeoutSeconds: 10 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    lock.release();
  });

  it("gives up after the timeout", async () => {
    await holderProcess(lockPath);
    const started = Date.now();
    const error = await refusal({ timeoutSeconds: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(error.code).toBe("locked");
    expect(error.hint).toMatch(/did not finish within 1s/);
  });

  it("never lets two acquirers hold it at once", async () => {
    // Each acquirer opens the file itself, so each has its own open file description: flock
    // makes them exclude each other within one process as between processes.
    let holders = 0;
    let most = 0;
    let entries = 0;
    const one = async () => {
      const lock = await acquireLock(lockPath, { timeoutSeconds: 30 });
      holders++;
      entries++;
      most = Math.max(most, holders);
      await new Promise((done) => setTimeout(done, 20));
      holders--;
      lock.release();
    };
    await Promise.all(Array.from({ length: 8 }, one));
    expect(entries).toBe(8);
    expect(most).toBe(1);
  });

  it("refuses a lock directory others may write, and says why it cannot create one", async () => {
    chmodSync(dir, 0o777);
    const shared = await refusal();
    expect(shared.message).toContain(dir);
    expect(shared.code).not.toBe("locked");
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, "file"), "");
    const error = await acquireLock(join(dir, "file", "op.lock"), { timeoutSeconds: 0 }).catch(
      (e: unknown) => e,
    );
    expect((error as OpError).code).toBe("file-error");
    expect((error as OpError).message).toContain("lock directory");
  });
});
