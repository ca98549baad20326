/**
 * The host lock, on its source: the child processes below run src/lock.ts bundled by esbuild
 * into a temporary file, not the build in dist/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
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

/** The descriptors this process has open (a refused lock must not leak one). */
const openDescriptors = () => readdirSync("/proc/self/fd").length;

describe("acquireLock, around the flock", () => {
  it("leaves exactly our pid in the file, whatever a longer pid left there", async () => {
    writeFileSync(lockPath, "4194304999\nmore\n");
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(readFileSync(lockPath, "utf8")).toBe(`${process.pid}\n`);
    lock.release();
  });

  it("names no pid when the holder has written none (held by another tool's flock here)", async () => {
    // Without -n: if a probe below takes the lock before flock has started (a loaded machine),
    // flock waits for it instead of giving up.
    const holder = spawn("flock", [lockPath, "sleep", "30"], { stdio: "ignore" });
    children.push(holder);
    // flock runs sleep once it holds the lock.
    await expect.poll(() => refusal().then((e) => e.code), { timeout: 5000 }).toBe("locked");
    const error = await refusal();
    expect(error.message).toBe(
      `another op apply is running (a process whose pid is not in the file yet holds ${lockPath})`,
    );
    expect(error.hint).toBe("wait for it, or pass --lock-timeout SECONDS to wait");
  });

  it("closes the file it opened when the lock is refused", async () => {
    await holderProcess(lockPath);
    const before = openDescriptors();
    for (let i = 0; i < 5; i++) await refusal();
    expect(openDescriptors()).toBe(before);
  });

  it("says why it cannot open the lock file", async () => {
    symlinkSync("/etc/hostname", lockPath);
    const error = await refusal();
    expect(error.code).toBe("file-error");
    expect(error.message).toMatch(`${lockPath}: cannot open the lock: `);
    expect(error.message).toMatch(/\(ELOOP\)$/);
  });

  it("reports a flock that fails for another reason than a holder, not as locked", async () => {
    // A real flock(2) on a local file fails only when held, so a script stands in for a
    // broken flock: the first `flock` on PATH.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "flock"), "#!/bin/sh\necho 'flock: bad file' >&2\nexit 1\n", {
      mode: 0o755,
    });
    const path = process.env.PATH;
    process.env.PATH = bin;
    try {
      const error = await refusal();
      expect(error.code).toBe("command-failed");
      expect(error.message).toBe(`flock could not lock ${lockPath} (exit 1): flock: bad file`);
      expect(error.hint).toBe("op needs util-linux's flock; run `op doctor`");
    } finally {
      process.env.PATH = path;
    }
    (await acquireLock(lockPath, { timeoutSeconds: 0 })).release();
  });
});

describe("the held lock", () => {
  it("can be released twice, closing its file once", async () => {
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    const held = openDescriptors();
    lock.release();
    expect(openDescriptors()).toBe(held - 1);
    // A second close of the same number could close a descriptor opened since.
    const other = openSync(lockPath, "r");
    try {
      lock.release();
      expect(fstatSync(other).isFile()).toBe(true);
    } finally {
      closeSync(other);
    }
  });

  it("is released when the process exits without releasing it, and stops listening on release", async () => {
    const exits = process.listenerCount("exit");
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(process.listenerCount("exit")).toBe(exits + 1);
    lock.release();
    expect(process.listenerCount("exit")).toBe(exits);

    const script = `
      const { acquireLock } = await import(${JSON.stringify(lockModule)});
      await acquireLock(${JSON.stringify(lockPath)}, { timeoutSeconds: 0 });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: "inherit",
    });
    children.push(child);
    expect(await new Promise((done) => child.on("exit", done))).toBe(0);
    // The exit handler emptied the file: no pid of a process that is gone.
    expect(readFileSync(lockPath, "utf8")).toBe("");
  });
});

describe("holderPid", () => {
  it.each([
    ["a pid and a newline", "1234\n", 1234],
    ["no file", undefined, undefined],
    ["an empty file", "", undefined],
    ["pid 0", "0\n", undefined],
    ["a negative pid", "-7\n", undefined],
    ["text", "op\n", undefined],
  ])("reads %s", (_what, content, pid) => {
    if (content !== undefined) writeFileSync(lockPath, content);
    expect(holderPid(lockPath)).toBe(pid);
  });
});
