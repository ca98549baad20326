/**
 * A read-only view of a ledger's database, for reading commands on a file system that is full
 * or read-only. LevelDB cannot open a database without writing (it turns its log into a
 * table, writes a new manifest and its LOG), so the view is a private directory in memory
 * (/dev/shm, else the temporary directory) holding a symlink to each of the database's files:
 * LevelDB reads the ledger's files through them and writes only into the view. It never writes
 * to an existing file (a new log, table or manifest always gets a new number), and what it
 * removes from the view is a symlink, never the file it points to.
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** LevelDB's own bookkeeping files, which the view has its own of. */
const NOT_LINKED = new Set(["LOCK", "LOG", "LOG.old"]);

/** Room LevelDB needs to open beyond its log turned into a table (a manifest, its LOG). */
const OPEN_MARGIN = 1 << 20;

/**
 * Whether opening `dir` normally could fail for want of writing: the file system is read-only,
 * or has less room than LevelDB's open writes (about its logs' size, turned into a table).
 */
export function cannotWrite(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    const { bavail, bsize } = statfsSync(dir);
    const logs = readdirSync(dir)
      .filter((name) => name.endsWith(".log"))
      .reduce((total, name) => total + statSync(`${dir}/${name}`).size, 0);
    return bavail * bsize < 2 * logs + OPEN_MARGIN;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EROFS" || code === "EACCES" || code === "EPERM";
  }
}

export async function openReadOnlyView(dir: string): Promise<string> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const view = mkdtempSync(join(base, "op-ledger-view-"));
  try {
    for (const name of readdirSync(dir)) {
      if (!NOT_LINKED.has(name)) symlinkSync(join(dir, name), join(view, name));
    }
    return view;
  } catch (error) {
    removeView(view);
    throw error;
  }
}

export function removeView(view: string): void {
  rmSync(view, { recursive: true, force: true });
}
