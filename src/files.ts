/**
 * How op touches files on the host: the files a user names (state files, image tarballs) are
 * opened without blocking and must be regular files of a bounded size; the files op owns
 * (keys, checkpoints, cache entries) are written to a temporary name, synced and renamed, never
 * through a symlink; its private directories are 0700 whatever the umask. A failure of the
 * file system (full, read-only, no permission) is an ordinary error naming the path.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { OpError } from "./errors.js";

const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY } = constants;

/** What the error messages call a file: "state file", "image rootfs", "ledger key"... */
export interface FileRole {
  what: string;
  /** Refused above this size, the limit stated in the error. */
  maxBytes?: number;
  /** Refuse a symlink at the path itself (op's own files). */
  noFollow?: boolean;
}

/**
 * Opens a file for reading without ever blocking on it (a FIFO, a device, `/dev/zero`) and
 * returns the descriptor once it is known to be a regular file within the size limit. The
 * caller closes it.
 */
export function openRegularFile(path: string, role: FileRole): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK | (role.noFollow ? O_NOFOLLOW : 0));
  } catch (error) {
    throw fileError(error, path, `cannot open the ${role.what}`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw new OpError(
        "invalid-file",
        `${path}: the ${role.what} is ${kindOf(stats)}, not a regular file`,
        {
          hint: `name a regular file as the ${role.what}`,
        },
      );
    }
    if (role.maxBytes !== undefined && stats.size > role.maxBytes) {
      throw new OpError(
        "invalid-file",
        `${path}: the ${role.what} is ${stats.size} bytes, more than the limit of ${role.maxBytes}`,
        { hint: `a ${role.what} larger than ${role.maxBytes} bytes is refused` },
      );
    }
    return { fd, size: stats.size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** The whole content of a regular file (see openRegularFile), read without blocking. */
export function readRegularFile(path: string, role: FileRole): Buffer {
  const { fd, size } = openRegularFile(path, role);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const limit = role.maxBytes ?? Number.POSITIVE_INFINITY;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.max(64 * 1024, Math.min(size + 1, 16 * 1024 * 1024)));
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      total += read;
      // A file that grows while it is read (or lies about its size, as /proc files do).
      if (total > limit) {
        throw new OpError(
          "invalid-file",
          `${path}: the ${role.what} is larger than the limit of ${limit} bytes`,
          {
            hint: `a ${role.what} larger than ${limit} bytes is refused`,
          },
        );
      }
      chunks.push(chunk.subarray(0, read));
    }
    return Buffer.concat(chunks, total);
  } catch (error) {
    throw error instanceof OpError ? error : fileError(error, path, `cannot read the ${role.what}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a file op owns: a new temporary file beside it (O_EXCL, never through a symlink),
 * written, synced, renamed over the path, and the directory synced. A crash or a full disk
 * leaves either the old file or the new one, never a partial one.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number,
  what: string,
): void {
  const temporary = join(dirname(path), `.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
    syncDirectory(dirname(path));
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // never created, or already renamed
    }
    throw error instanceof OpError ? error : fileError(error, path, `cannot write the ${what}`);
  }
}

/** Makes the directory's entry changes (a rename, a new file) durable. */
export function syncDirectory(path: string): void {
  const fd = openSync(path, O_RDONLY | O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A directory only op may write: created 0700 whatever the umask (parents as needed), and
 * refused when it is a symlink, not a directory, owned by another user, or writable by others.
 */
export function ensurePrivateDirectory(path: string, what: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw fileError(error, path, `cannot create the ${what}`);
  }
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    throw fileError(error, path, `cannot read the ${what}`);
  }
  if (!stats.isDirectory()) {
    throw new OpError(
      "invalid-state",
      `${path}: the ${what} is ${kindOf(stats)}, not a directory`,
      {
        hint: `remove it, or point op at another ${what}`,
      },
    );
  }
  refuseForeignOrShared(path, stats, what);
}

/** Refuses a file or directory of op's that another user owns or others may write. */
export function refuseForeignOrShared(path: string, stats: Stats, what: string): void {
  const uid = process.getuid?.() ?? 0;
  if (stats.uid !== uid) {
    throw new OpError(
      "permission-denied",
      `${path}: the ${what} belongs to uid ${stats.uid}, not to op's user (uid ${uid})`,
      {
        hint: `chown ${uid} ${path}, or point op at another ${what}`,
      },
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new OpError(
      "permission-denied",
      `${path}: the ${what} may be written by others (mode ${(stats.mode & 0o777).toString(8).padStart(4, "0")})`,
      { hint: `chmod go-w ${path}` },
    );
  }
}

const fileSystemFaults: Record<string, string> = {
  ENOSPC: "the file system is full",
  EDQUOT: "the disk quota is exhausted",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOTDIR: "a component of the path is not a directory",
  EISDIR: "it is a directory",
  ELOOP: "it is a symlink (op does not follow symlinks here)",
  EMFILE: "too many open files",
  EIO: "input/output error",
};

/** A file system error as an OpError naming the path, what op was doing, and a hint. */
export function fileError(error: unknown, path: string, doing: string): OpError {
  if (error instanceof OpError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? "";
  const fault = fileSystemFaults[code] ?? (error as Error).message ?? String(error);
  const permission = code === "EACCES" || code === "EPERM";
  return new OpError(
    permission ? "permission-denied" : "file-error",
    `${path}: ${doing}: ${fault}${code ? ` (${code})` : ""}`,
    {
      hint:
        code === "ENOSPC" || code === "EDQUOT"
          ? "free some space on that file system and run op again; nothing was half-written"
          : code === "EROFS"
            ? "remount the file system read-write, or point op at another path"
            : permission
              ? "run op as root, or fix the path's ownership and mode"
              : "check the path and run op again",
      cause: error,
    },
  );
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  if (stats.isSymbolicLink()) return "a symlink";
  return "not a regular file";
}
