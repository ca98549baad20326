/**
 * `op file pull`: files and trees out of instances. Every source is looked up, and the local
 * directory they go to checked, before anything is written. A file or symlink is written to a
 * temporary name in its directory and renamed over the destination, so a reader never sees
 * half a file and a failed pull leaves the old one; a directory gets its mode once its entries
 * are in (a 0500 directory could not be filled after).
 */
import { randomBytes } from "node:crypto";
import { createWriteStream, type Stats } from "node:fs";
import { chmod, chown, lchown, lstat, mkdir, rename, rm, symlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { OpError } from "../../../src/errors.js";
import type { FileEntry } from "../../../src/incus-files.js";
import type { FilePull } from "../../../src/plugin.js";
import { type FileSession, localFailure } from "./file-session.js";

interface PullSource {
  session: FileSession;
  path: string;
}

async function localStat(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw localFailure(error, "reading", path);
  }
}

/** Ownership is the instance's only when op runs as root; otherwise files are the user's. */
const asRoot = process.getuid?.() === 0;

export async function pullInto(sources: PullSource[], request: FilePull): Promise<void> {
  for (const { session: s, path } of sources) {
    const found = await s.files.stat(s.ref(path));
    if (found === undefined)
      throw new OpError("not-found", `${s.shown(path)} does not exist`, {
        hint: "nothing was pulled",
      });
    if (found.type === "directory" && !request.recursive)
      throw new OpError("usage", `${s.shown(path)} is a directory`, {
        hint: "give -r to pull a directory with everything under it",
      });
  }
  const local = request.target;
  const existing = await localStat(local);
  const into = existing?.isDirectory() === true;
  if (!into) {
    if (sources.length > 1 || local.endsWith("/"))
      throw new OpError(
        existing === undefined ? "not-found" : "usage",
        existing === undefined
          ? `directory ${local} does not exist`
          : `${local} is not a directory, and several sources go there`,
        { hint: "pull into a directory that exists; nothing was pulled" },
      );
    const parent = dirname(local);
    if ((await localStat(parent))?.isDirectory() !== true)
      throw new OpError("not-found", `directory ${parent} does not exist`, {
        hint: "create it first (mkdir -p); nothing was pulled",
      });
  }
  for (const { session: s, path } of sources) {
    const name = posix.basename(path);
    if (into && name === "")
      throw new OpError("usage", `${s.shown(path)} has no name to give a copy in ${local}`);
    await pullEntry(s, path, into ? join(local, name) : local, path, request.signal);
  }
}

/**
 * Incus gives a symlink's target made absolute (joined to the link's directory and tidied,
 * not resolved): one that points inside the tree being pulled is made relative again, so the
 * copy points into the copy; one that points elsewhere stays absolute, as the instance sees it.
 */
export function linkTarget(given: string, link: string, root: string): string {
  const inside = given === root || given.startsWith(root.endsWith("/") ? root : `${root}/`);
  return inside ? posix.relative(posix.dirname(link), given) || "." : given;
}

async function pullEntry(
  s: FileSession,
  path: string,
  to: string,
  root: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted();
  const present = await localStat(to);
  const entry = await s.files.read(s.ref(path));
  // Gone since it was listed: nothing to copy (an instance that runs changes its files).
  if (entry === undefined) {
    s.ctx.log.warn(`${s.shown(path)} disappeared while it was pulled; skipped`);
    return;
  }
  const refuse = (message: string): never => {
    if (entry.type === "file") entry.body.destroy();
    throw new OpError("invalid-state", message, { hint: "move it away, or pull elsewhere" });
  };
  if (entry.type === "directory") {
    if (present !== undefined && !present.isDirectory())
      refuse(`${to} exists and is not a directory; ${s.shown(path)} is one`);
    if (present === undefined)
      await mkdir(to, { mode: 0o700 }).catch((error: unknown) => {
        throw localFailure(error, "creating the directory", to);
      });
    for (const name of [...entry.entries].sort())
      await pullEntry(s, posix.join(path, name), join(to, name), root, signal);
    await settle(to, entry, false);
    s.report.directories++;
    return;
  }
  if (present?.isDirectory()) refuse(`${to} is a directory; ${s.shown(path)} is a ${entry.type}`);
  const temporary = join(dirname(to), `.${basename(to)}.op-${randomBytes(4).toString("hex")}`);
  try {
    if (entry.type === "symlink") {
      await symlink(linkTarget(entry.target, path, root), temporary);
      await settle(temporary, entry, true);
      s.report.symlinks++;
    } else {
      const out = createWriteStream(temporary, { flags: "wx", mode: 0o600 });
      await pipeline(entry.body, out, signal === undefined ? {} : { signal });
      await settle(temporary, entry, false);
      s.report.files++;
      s.report.bytes += out.bytesWritten;
    }
    await rename(temporary, to);
  } catch (error) {
    if (entry.type === "file") entry.body.destroy();
    await rm(temporary, { force: true });
    if (signal?.aborted) throw signal.reason;
    throw localFailure(error, "writing", to);
  }
  s.ctx.log.debug(`pulled ${s.shown(path)} to ${to}`);
}

/** The entry's owner (as root) and then its mode: chown clears set-id bits. */
async function settle(local: string, entry: FileEntry, link: boolean): Promise<void> {
  try {
    if (asRoot) await (link ? lchown : chown)(local, entry.stat.uid, entry.stat.gid);
    if (!link) await chmod(local, entry.stat.mode);
  } catch (error) {
    throw localFailure(error, "setting the owner and mode of", local);
  }
}
