/**
 * One `op apply` at a time per host. The lock is a file holding the holder's pid, created
 * with O_EXCL. A lock whose pid is gone (a run that was killed) is taken over; a live one is
 * waited for up to the timeout, then reported with its pid.
 *
 * Written here rather than taken from a package: the lockfile packages on the registry judge
 * staleness by mtime, and the requirement is to name the holder's pid and to take over a
 * lock only when that process is gone.
 */
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OpError } from "./errors.js";

export interface Lock {
  release(): void;
}

export interface LockOptions {
  /** Seconds to wait for a live holder; 0 fails at once. */
  timeoutSeconds: number;
  pollMs?: number;
}

export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    if (tryCreate(path)) return heldLock(path);
    const holder = readHolder(path);
    if (holder !== undefined && !isAlive(holder)) {
      takeOverStale(path, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      const who = holder === undefined ? "another process" : `pid ${holder}`;
      throw new OpError("locked", `another op apply is running (${who} holds ${path})`, {
        hint:
          options.timeoutSeconds > 0
            ? `it did not finish within ${options.timeoutSeconds}s; try again later`
            : "wait for it, or pass --lock-timeout SECONDS to wait",
      });
    }
    await sleep(options.pollMs ?? 100);
  }
}

function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new OpError(
      "permission-denied",
      `cannot create the lock ${path}: ${(error as Error).message}`,
      {
        hint: "run op as root, or point OP_LOCK at a writable path",
      },
    );
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined; // released between our attempt and this read
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Moves the stale lock aside (rename is atomic, so only one contender gets it) and checks that
 * what was moved is really the dead holder's; if a live process re-took the lock in between,
 * its file is put back.
 */
function takeOverStale(path: string, stalePid: number): void {
  const aside = `${path}.stale.${process.pid}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved it first; try again
  }
  if (readHolder(aside) !== stalePid) {
    try {
      linkSync(aside, path);
    } catch {
      // a third process took the lock meanwhile; it is the holder now
    }
  }
  unlinkSync(aside);
}

function heldLock(path: string): Lock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    if (readHolder(path) === process.pid) unlinkSync(path);
  };
  process.on("exit", release);
  return { release };
}
