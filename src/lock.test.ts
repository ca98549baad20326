import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
});
