import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { acquireLock } from "./lock.js";

let dir: string;
let lockPath: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "op-lock-"));
  lockPath = join(dir, "op.lock");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has exited (and so cannot hold anything). */
function deadPid(): number {
  const child = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(child.stdout.trim());
}

describe("acquireLock", () => {
  it("writes our pid and removes the file on release", async () => {
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(readFileSync(lockPath, "utf8").trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  it("fails at once with the holder's pid when another run holds it", async () => {
    // A live process that is not us: the parent of this test runner is alive for its duration.
    writeFileSync(lockPath, `${process.ppid}\n`);
    const error = await acquireLock(lockPath, { timeoutSeconds: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("locked");
    expect((error as OpError).message).toContain(`pid ${process.ppid}`);
    expect(readFileSync(lockPath, "utf8").trim()).toBe(String(process.ppid));
  });

  it("takes over a lock whose holder is gone", async () => {
    writeFileSync(lockPath, `${deadPid()}\n`);
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(readFileSync(lockPath, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  it("waits for a holder that releases within the timeout", async () => {
    const first = await acquireLock(lockPath, { timeoutSeconds: 0 });
    // Our own pid is alive, so the second call must wait for the release.
    setTimeout(() => first.release(), 300);
    const started = Date.now();
    const second = await acquireLock(lockPath, { timeoutSeconds: 5, pollMs: 20 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    second.release();
  });

  it("gives up after the timeout", async () => {
    const first = await acquireLock(lockPath, { timeoutSeconds: 0 });
    const error = await acquireLock(lockPath, { timeoutSeconds: 0.2, pollMs: 20 }).catch(
      (e: unknown) => e,
    );
    expect((error as OpError).code).toBe("locked");
    expect((error as OpError).hint).toMatch(/did not finish within 0.2s/);
    first.release();
  });

  it("waits for a lock file whose writer has not written its pid yet, then takes it over when old", async () => {
    writeFileSync(lockPath, "");
    const error = await acquireLock(lockPath, { timeoutSeconds: 0 }).catch((e: unknown) => e);
    expect((error as OpError).message).toContain("pid is not in the file yet");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    const lock = await acquireLock(lockPath, { timeoutSeconds: 0 });
    expect(readFileSync(lockPath, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  it("says so when the lock cannot be created, instead of failing as a bug", async () => {
    writeFileSync(join(dir, "file"), "");
    const error = await acquireLock(join(dir, "file", "op.lock"), { timeoutSeconds: 0 }).catch(
      (e: unknown) => e,
    );
    expect((error as OpError).code).toBe("permission-denied");
    expect((error as OpError).message).toContain("cannot create the lock directory");
  });

  it("lets exactly one of many processes racing for a stale lock in at a time", async () => {
    // Real processes on the built module (scripts/test.sh builds before testing).
    const lockModule = resolve(import.meta.dirname, "..", "dist", "src", "lock.js");
    const log = join(dir, "log");
    writeFileSync(log, "");
    writeFileSync(lockPath, `${deadPid()}\n`);
    const script = `
      const { acquireLock } = await import(${JSON.stringify(lockModule)});
      const { appendFileSync } = await import("node:fs");
      const lock = await acquireLock(${JSON.stringify(lockPath)}, { timeoutSeconds: 30, pollMs: 5 });
      appendFileSync(${JSON.stringify(log)}, "in " + process.pid + "\\n");
      await new Promise((r) => setTimeout(r, 30));
      appendFileSync(${JSON.stringify(log)}, "out " + process.pid + "\\n");
      lock.release();`;
    const children = Array.from({ length: 6 }, () =>
      spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "inherit" }),
    );
    const codes = await Promise.all(
      children.map((child) => new Promise((done) => child.on("exit", done))),
    );
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toHaveLength(12);
    for (let i = 0; i < lines.length; i += 2) {
      const [enter, leave] = [lines[i]?.split(" "), lines[i + 1]?.split(" ")];
      expect([enter?.[0], leave?.[0], leave?.[1]]).toEqual(["in", "out", enter?.[1]]);
    }
    expect(existsSync(lockPath)).toBe(false);
  });
});
