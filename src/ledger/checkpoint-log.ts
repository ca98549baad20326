/**
 * The checkpoint log: every checkpoint op signs is also appended, synced, to a plain file
 * beside the ledger directory (`/var/lib/op/ledger.checkpoints`). It lives outside LevelDB on
 * purpose: when LevelDB loses writes (a damaged `.log` is skipped on recovery, silently taking
 * the last records, head and checkpoint with it) the ledger still looks whole, but this file
 * names a checkpoint the ledger no longer has. It only grows; entries are checkpoint texts
 * (checkpoint.ts), one after another.
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { fileError, refuseForeignOrShared, syncDirectory } from "../files.js";

const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_RDONLY, O_NONBLOCK } = constants;

const HEADER = "op ledger checkpoint\n";
/** A checkpoint is ~400 bytes; its origin line is at most a few hundred more. */
const TAIL_BYTES = 16 * 1024;

export function checkpointLogPath(ledgerDir: string): string {
  return `${ledgerDir}.checkpoints`;
}

/** Appends one checkpoint and syncs it (and, when the file is new, its directory entry). */
export function appendCheckpointLog(path: string, text: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600);
    const stats = fstatSync(fd);
    refuseForeignOrShared(path, stats, "checkpoint log");
    const bytes = Buffer.from(text.endsWith("\n") ? text : `${text}\n`, "utf8");
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    if (stats.size === 0) syncDirectory(dirname(path));
  } catch (error) {
    throw fileError(error, path, "cannot append to the checkpoint log");
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function openLog(path: string, doing: string): number | undefined {
  try {
    return openSync(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw fileError(error, path, doing);
  }
}

function readAt(fd: number, start: number, length: number): string {
  const buffer = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const n = readSync(fd, buffer, read, length - read, start + read);
    if (n === 0) break;
    read += n;
  }
  return buffer.toString("utf8", 0, read);
}

/**
 * Splits log text into checkpoint texts. A tail read drops its partial first entry; read from
 * the start, text before the first header is an entry too (an altered one, which verify names).
 */
function entries(text: string, fromStart: boolean): string[] {
  let at = 0;
  if (!fromStart) {
    const first = text.indexOf(`\n${HEADER}`);
    if (first < 0) return [];
    at = first + 1;
  }
  const found: string[] = [];
  while (at < text.length) {
    const next = text.indexOf(`\n${HEADER}`, at);
    if (next < 0) {
      found.push(text.slice(at));
      break;
    }
    found.push(text.slice(at, next + 1));
    at = next + 1;
  }
  return found;
}

/**
 * The last checkpoint in the log: undefined when there is no log, "" when it holds none. Reads
 * only the file's tail, so the cost does not grow with the ledger.
 */
export function lastLoggedCheckpoint(path: string): string | undefined {
  const fd = openLog(path, "cannot read the checkpoint log");
  if (fd === undefined) return undefined;
  try {
    const { size } = fstatSync(fd);
    // A window that holds no entry's start lies inside one long entry (a long origin): widen it.
    for (let window = TAIL_BYTES; ; window *= 4) {
      const start = Math.max(0, size - window);
      const found = entries(readAt(fd, start, size - start), start === 0);
      if (found.length > 0 || start === 0) return found.at(-1) ?? "";
    }
  } catch (error) {
    throw fileError(error, path, "cannot read the checkpoint log");
  } finally {
    closeSync(fd);
  }
}

/** Every checkpoint in the log (for `op ledger verify`), or undefined when there is no log. */
export function loggedCheckpoints(path: string): string[] | undefined {
  const fd = openLog(path, "cannot read the checkpoint log");
  if (fd === undefined) return undefined;
  try {
    return entries(readAt(fd, 0, fstatSync(fd).size), true);
  } catch (error) {
    throw fileError(error, path, "cannot read the checkpoint log");
  } finally {
    closeSync(fd);
  }
}
