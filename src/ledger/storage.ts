/**
 * What LevelDB's errors mean to the user. Its corruption errors name the damaged file
 * ("Corruption: block checksum mismatch: /var/lib/op/ledger/000005.ldb"): a damaged ledger,
 * exit 3. Its I/O errors carry the OS's words ("No space left on device"): an ordinary file
 * error naming the ledger and what to do, never "a bug in op".
 */
import { readdirSync } from "node:fs";
import { OpError } from "../errors.js";

interface LevelFailure {
  code: string | undefined;
  message: string;
}

/** The innermost LevelDB code and message of an error (abstract-level wraps them in `cause`). */
function levelFailure(error: unknown): LevelFailure {
  let code: string | undefined;
  let message = "";
  for (
    let current = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
    current !== undefined && current !== null;
    current = current.cause as typeof current
  ) {
    if (
      typeof current.code === "string" &&
      (code === undefined || current.code !== "LEVEL_DATABASE_NOT_OPEN")
    )
      code = current.code;
    if (typeof current.message === "string") message = current.message;
    if (current.cause === current) break;
  }
  return { code, message };
}

const faults: [RegExp, string, string][] = [
  [/No space left|ENOSPC/i, "ENOSPC", "the file system is full"],
  [/quota/i, "EDQUOT", "the disk quota is exhausted"],
  [/Read-only file system|EROFS/i, "EROFS", "the file system is read-only"],
  [/Permission denied|EACCES|Operation not permitted|EPERM/i, "EACCES", "permission denied"],
];

const hints: Record<string, string> = {
  ENOSPC:
    "free some space on that file system and run op again; the ledger keeps every record written before",
  EDQUOT: "raise the quota or free some space, and run op again",
  EROFS: "remount the file system read-write, or point op at another ledger (--ledger)",
  EACCES: "run op as root, or point it at a directory it may write (--ledger)",
};

/** The database's table and log files, to name where LevelDB found damage. */
function tableFiles(dir: string): string {
  try {
    const names = readdirSync(dir).filter((name) => /^\d+\.(ldb|sst|log)$/.test(name));
    return names.length === 1 ? `its file ${names[0]}` : `one of its files ${names.join(", ")}`;
  } catch {
    return "its files";
  }
}

/** The file system fault behind a LevelDB error (ENOSPC, EDQUOT, EROFS, EACCES), if any. */
export function storageFault(error: unknown): string | undefined {
  const { message } = levelFailure(error);
  return faults.find(([pattern]) => pattern.test(message))?.[1];
}

/** A corruption error of the ledger, exit 3, with what the admin can do. */
export function corruptLedger(dir: string, problem: string, cause?: unknown): OpError {
  return new OpError("ledger-corrupt", `the ledger ${dir} is damaged: ${problem}`, {
    hint:
      "nothing was written to it. `op ledger verify` names the damage; restore the ledger and " +
      `${dir}.checkpoints from a backup, or run \`op ledger repair\`: it keeps the damaged ledger aside, untouched, and starts a new one that records why`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * LevelDB's error as an OpError (anything else unchanged). `doing` says what op was doing:
 * "open", "write to", "read".
 */
export function storageError(error: unknown, dir: string, doing: string): unknown {
  if (error instanceof OpError) return error;
  const { code, message } = levelFailure(error);
  if (code === "LEVEL_LOCKED") {
    return new OpError("ledger-busy", `the ledger ${dir} is in use by another process`, {
      hint: "another op run holds it: wait for that run to finish, then retry",
      cause: error,
    });
  }
  if (code === "LEVEL_CORRUPTION" || /Corruption/i.test(message)) {
    const words = message.replace(/^Corruption: /, "corruption: ");
    // LevelDB names the file only sometimes ("bad block contents" comes without one).
    const where = message.includes("/") ? "" : ` in ${tableFiles(dir)}`;
    return corruptLedger(dir, `LevelDB reports ${words}${where}`, error);
  }
  const fault = faults.find(([pattern]) => pattern.test(message));
  if (fault !== undefined && code?.startsWith("LEVEL_") !== false) {
    const [, errno, words] = fault;
    return new OpError(
      errno === "EACCES" ? "permission-denied" : "file-error",
      `${dir}: cannot ${doing} the ledger: ${words} (${message})`,
      { hint: hints[errno] ?? "check the ledger's file system", cause: error },
    );
  }
  if (code === "LEVEL_IO_ERROR" || code?.startsWith("LEVEL_")) {
    return new OpError("file-error", `${dir}: cannot ${doing} the ledger: ${message}`, {
      hint: "check the ledger's file system (dmesg), then run op again",
      cause: error,
    });
  }
  return error;
}
