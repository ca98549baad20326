/**
 * Declared files (`containers[].files[]`): the shapes prepare, query, diff and apply share.
 *
 * A file's bytes never travel in the desired state's enumerable fields: the ledger records a
 * container's create with its whole desired state, and a plan may be printed or exported, so
 * only the path, SHA-256, size, mode and owner are data. The bytes (or the host file they come
 * from) and the entry's JSON path ride along as a non-enumerable `origin`.
 */

/** `content` is at most this many bytes (UTF-8): text in a state file, not a payload. */
export const maxContentBytes = 1024 * 1024;
/** `source` is at most this many bytes: the apply holds it in memory for one POST. */
export const maxSourceBytes = 64 * 1024 * 1024;
/** Default mode and owner of a declared file. */
export const defaultMode = "0644";
/** How many files of one container are read or written at once. */
export const fileConcurrency = 8;

/** What a declared file must be, as the plan and the ledger may show it. */
export interface FileState {
  sha256: string;
  size: number;
  /** Four octal digits (`0644`), as Incus answers them. */
  mode: string;
  uid: number;
  gid: number;
}

/** Where a file's bytes come from, and where its entry is in the file. */
export interface FileOrigin {
  /** The entry's JSON path (`/plugins/lxc/containers/0/files/2`). */
  at: string;
  /** The text of `content`, as bytes. */
  bytes?: Buffer;
  /** The host file of `source`, resolved from the state file's directory. */
  source?: string;
}

export interface DesiredFile {
  /** Absolute and normalised path inside the container. */
  path: string;
  ensure: "present" | "absent";
  /** Present files only: what it must be (the hash and size of `content` or `source`). */
  want?: FileState;
  /**
   * Read by prepare when the query did not (the container's tag did not list it yet): what
   * the file is now, null when missing. Used only when the live container has no reading.
   */
  seen?: LiveFile | null;
}

/** A declared path as the container has it. */
export interface LiveFile {
  /** `file`, `directory` or `symlink`. */
  type: string;
  mode: string;
  uid: number;
  gid: number;
  /** Regular files and symlinks: SHA-256 and size of what the file API returned. */
  sha256?: string;
  size?: number;
}

const origins = new WeakMap<DesiredFile, FileOrigin>();

/** A desired file with its origin attached (not enumerable: not in plans or the ledger). */
export function withOrigin(file: DesiredFile, origin: FileOrigin): DesiredFile {
  origins.set(file, origin);
  return file;
}

export function originOf(file: DesiredFile): FileOrigin {
  const origin = origins.get(file);
  if (origin === undefined) throw new Error(`bug: declared file ${file.path} has no origin`);
  return origin;
}

/** The change entries' path of one declared file (`files./etc/motd`). */
export const filePath = (path: string) => `files.${path}`;
