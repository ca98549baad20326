/**
 * One `op apply` at a time per host. The lock is a file holding the holder's pid, created
 * with O_EXCL in a directory only root may write (so no other user can block op). A lock whose
 * pid is gone (a run that was killed) is taken over; a live one is waited for up to the
 * timeout, then reported with its pid.
 *
 * Taking over is serialised by a second O_EXCL file, `<lock>.takeover`: only its holder may
 * remove a stale lock, and it re-reads the lock first, so a lock that a live run has just
 * re-taken is never removed. Normal acquisition never removes anything.
 *
 * Written here rather than taken from a package: the lock-file packages on the registry judge
 * staleness by age, and op must name the holder's pid and take over only from a dead process.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
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
  /** A lock file with no readable pid older than this is stale (its writer died). */
  unreadableStaleMs?: number;
}

type Holder = { pid: number } | { pid: undefined; ageMs: number };

export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const staleAfterMs = options.unreadableStaleMs ?? 10_000;
  makeLockDir(dirname(path));
  for (;;) {
    if (tryCreate(path)) return heldLock(path);
    const holder = readHolder(path);
    if (holder === undefined) continue; // released between our attempt and the read
    if (isStale(holder, staleAfterMs) && removeStale(path, holder, staleAfterMs)) continue;
    if (Date.now() >= deadline) {
      const who =
        holder.pid === undefined
          ? "a process whose pid is not in the file yet"
          : `pid ${holder.pid}`;
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

function makeLockDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw lockError(`cannot create the lock directory ${dir}`, error);
  }
}

function lockError(what: string, error: unknown): OpError {
  return new OpError("permission-denied", `${what}: ${(error as Error).message}`, {
    hint: "run op as root, or point OP_LOCK at a writable path",
  });
}

function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw lockError(`cannot create the lock ${path}`, error);
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The holder's pid, or how old an unreadable lock file is; undefined if there is no file. */
function readHolder(path: string): Holder | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    if (Number.isInteger(pid) && pid > 0) return { pid };
    return { pid: undefined, ageMs: Date.now() - statSync(path).mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw lockError(`cannot read the lock ${path}`, error);
  }
}

function isStale(holder: Holder, staleAfterMs: number): boolean {
  // An empty file is a writer between open and write, unless it has been so for long.
  return holder.pid === undefined ? holder.ageMs > staleAfterMs : !isAlive(holder.pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes a stale lock if we get the takeover file and the lock is still the stale one. */
function removeStale(path: string, stale: Holder, staleAfterMs: number): boolean {
  const takeover = `${path}.takeover`;
  if (!tryCreate(takeover)) {
    const other = readHolder(takeover);
    // A takeover file left by a run killed mid-takeover is itself stale.
    if (other !== undefined && isStale(other, staleAfterMs)) unlinkIfPresent(takeover);
    return false;
  }
  try {
    const now = readHolder(path);
    if (now !== undefined && now.pid === stale.pid && isStale(now, staleAfterMs))
      unlinkIfPresent(path);
    return true;
  } finally {
    unlinkIfPresent(takeover);
  }
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      throw lockError(`cannot remove ${path}`, error);
  }
}

function heldLock(path: string): Lock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    const holder = readHolder(path);
    if (holder?.pid === process.pid) unlinkIfPresent(path);
  };
  process.on("exit", release);
  return { release };
}
