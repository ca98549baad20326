/**
 * One `op apply` at a time per host, with a lock the kernel releases when its holder dies:
 * flock(2) on a file in a directory only root may write (so no other user can block op).
 * Whatever kills op (kill -9, a crash, the OOM killer), the lock goes with its last open
 * descriptor, so there is no stale lock to judge and no pid to trust: the holder's pid is
 * written in the file only so that the "locked" message can name it.
 *
 * Node has no flock(2) and op uses no native code, so util-linux `flock` takes it: op opens
 * the file and hands that open file description to `flock -n 0` as its standard input; the
 * lock belongs to the description, not to the `flock` process, so it stays held by op's
 * descriptor after `flock` exits, until op closes it or dies. Node opens files close-on-exec,
 * so no other command op starts inherits the lock. The cost is one short process, on
 * `op apply` only.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { OpError } from "./errors.js";
import { createRunner } from "./exec.js";
import { ensurePrivateDirectory, fileError } from "./files.js";

export interface Lock {
  release(): void;
}

export interface LockOptions {
  /** Seconds to wait for another holder; 0 fails at once. */
  timeoutSeconds: number;
}

/** flock's exit code when the lock is held by another (its -E option). */
const heldElsewhere = 75;

export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  ensurePrivateDirectory(dirname(path), "lock directory");
  const fd = openLockFile(path);
  try {
    await lockDescription(fd, path, options.timeoutSeconds);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  // Only for the message another run prints; the lock itself is the flock.
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return heldLock(fd);
}

function openLockFile(path: string): number {
  try {
    return openSync(
      path,
      constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      0o600,
    );
  } catch (error) {
    throw fileError(error, path, "cannot open the lock");
  }
}

async function lockDescription(fd: number, path: string, timeoutSeconds: number): Promise<void> {
  const wait = timeoutSeconds > 0 ? ["-w", String(timeoutSeconds)] : ["-n"];
  const result = await createRunner().run(
    "flock",
    [...wait, "-E", String(heldElsewhere), "0"],
    // flock's own timeout is -w; this one only guards against a flock that never returns.
    { stdinFile: fd, check: false, timeoutMs: (timeoutSeconds + 30) * 1000 },
  );
  if (result.exitCode === 0) return;
  if (result.exitCode === heldElsewhere) throw locked(path, timeoutSeconds);
  throw new OpError(
    "command-failed",
    `flock could not lock ${path} (exit ${result.exitCode}): ${result.stderr.trim()}`,
    { hint: "op needs util-linux's flock; run `op doctor`" },
  );
}

function locked(path: string, timeoutSeconds: number): OpError {
  const pid = holderPid(path);
  const who = pid === undefined ? "a process whose pid is not in the file yet" : `pid ${pid}`;
  return new OpError("locked", `another op apply is running (${who} holds ${path})`, {
    hint:
      timeoutSeconds > 0
        ? `it did not finish within ${timeoutSeconds}s; try again later`
        : "wait for it, or pass --lock-timeout SECONDS to wait",
  });
}

/** The pid the holder wrote, if it has; only ever used in a message. */
export function holderPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function heldLock(fd: number): Lock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    // The file stays: removing it would let a run that opened it before the removal hold a
    // lock on a name no one else sees.
    try {
      ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  };
  process.on("exit", release);
  return { release };
}
