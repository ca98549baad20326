/**
 * `op file push`: local files and trees into an instance. Every local source is checked
 * before anything is sent, and so is the directory they go to; then each entry is written
 * through the files API, a file's bytes streamed from disk.
 */
import type { Stats } from "node:fs";
import { lstat, open, readdir, readlink, stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { OpError } from "../../../src/errors.js";
import type { FileStat } from "../../../src/incus-files.js";
import type { FilePush } from "../../../src/plugin.js";
import { type FileSession, localFailure } from "./file-session.js";

interface LocalSource {
  path: string;
  stats: Stats;
}

/**
 * A source named on the command line: it must exist, and be a file, or a directory with -r.
 * A symlink named there is followed (as `cp` does); one inside a tree is copied as a symlink.
 */
async function localSource(path: string, recursive: boolean): Promise<LocalSource> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new OpError("not-found", `${path} does not exist (the local path to push)`, {
        hint: "nothing was pushed",
      });
    throw localFailure(error, "reading", path);
  }
  if (stats.isDirectory() && !recursive)
    throw new OpError("usage", `${path} is a directory`, {
      hint: "give -r to push a directory with everything under it",
    });
  if (!stats.isDirectory() && !stats.isFile())
    throw new OpError("usage", `${path} is neither a file nor a directory`);
  return { path, stats };
}

/** Pushes the request's sources to `path` in the session's instance. */
export async function pushInto(s: FileSession, request: FilePush, path: string): Promise<void> {
  const sources: LocalSource[] = [];
  for (const source of request.sources) sources.push(await localSource(source, request.recursive));
  const owner = { uid: request.uid ?? 0, gid: request.gid ?? 0 };
  const mkdirs = async (dir: string): Promise<void> => {
    const found = await s.files.stat(s.ref(dir));
    if (found?.type === "directory") return;
    if (found !== undefined)
      throw new OpError("invalid-state", `${s.shown(dir)} is a ${found.type}, not a directory`);
    if (!request.createDirs)
      throw new OpError("not-found", `directory ${s.shown(dir)} does not exist`, {
        hint: "give -p (--create-dirs) to create it; nothing was pushed",
      });
    await mkdirs(posix.dirname(dir));
    await s.files.write(s.ref(dir), { type: "directory", mode: 0o755, ...owner });
  };
  const existing = await s.files.stat(s.ref(path));
  // A directory that exists, or a path written with a trailing '/', takes the sources under it.
  const into = existing?.type === "directory" || path.endsWith("/");
  if (into) await mkdirs(path.replace(/(.)\/$/, "$1"));
  else if (sources.length > 1)
    throw new OpError(
      "usage",
      `${s.shown(path)} is not a directory, and several sources go there`,
      {
        hint: "name a directory that exists, or end the path with '/' (and give -p to create it)",
      },
    );
  // A path that exists has its directory; a new one needs it checked (or made, with -p).
  else if (existing === undefined) await mkdirs(posix.dirname(path));

  const copy = (source: LocalSource, to: string, known: FileStat | undefined) =>
    pushEntry(s, request, owner, source, to, known);
  for (const source of sources) {
    const to = into ? posix.join(path, basename(source.path)) : path;
    await copy(source, to, into ? await s.files.stat(s.ref(to)) : existing);
  }
}

/** One entry. `known` is what is at `to` already (undefined: nothing, as in a directory this push created). */
async function pushEntry(
  s: FileSession,
  request: FilePush,
  owner: { uid: number; gid: number },
  source: LocalSource,
  to: string,
  known: FileStat | undefined,
): Promise<void> {
  const ref = s.ref(to);
  const kind = source.stats.isDirectory()
    ? "directory"
    : source.stats.isSymbolicLink()
      ? "symlink"
      : source.stats.isFile()
        ? "file"
        : undefined;
  if (kind === undefined) {
    s.ctx.log.warn(`skipped ${source.path}: not a file, directory or symlink`);
    return;
  }
  if (known?.type === "directory" && kind !== "directory")
    throw new OpError("invalid-state", `${s.shown(to)} is a directory; ${source.path} is not`);
  if (known !== undefined && known.type !== "directory" && kind === "directory")
    throw new OpError(
      "invalid-state",
      `${s.shown(to)} is a ${known.type}; ${source.path} is a directory`,
    );

  if (kind === "directory") {
    if (known === undefined) {
      await s.files.write(ref, {
        type: "directory",
        mode: source.stats.mode & 0o7777,
        ...owner,
      });
    }
    s.report.directories++;
    const names = await readdir(source.path).catch((error: unknown) => {
      throw localFailure(error, "reading the directory", source.path);
    });
    for (const name of names.sort()) {
      const child = join(source.path, name);
      const stats = await lstat(child).catch((error: unknown) => {
        throw localFailure(error, "reading", child);
      });
      const childTo = posix.join(to, name);
      await pushEntry(
        s,
        request,
        owner,
        { path: child, stats },
        childTo,
        known === undefined ? undefined : await s.files.stat(s.ref(childTo)),
      );
    }
    return;
  }

  // A file is written through a symlink in its way, and Incus makes no symlink over
  // anything: such an entry goes first. A file over a file takes the mode and owner asked.
  if (known !== undefined && (known.type === "symlink" || kind === "symlink"))
    await s.files.remove(ref);
  if (kind === "symlink") {
    const target = await readlink(source.path).catch((error: unknown) => {
      throw localFailure(error, "reading the symlink", source.path);
    });
    await s.files.write(ref, { type: "symlink", target, ...owner });
    s.report.symlinks++;
    return;
  }
  const mode = request.mode ?? source.stats.mode & 0o7777;
  const file = await open(source.path, "r").catch((error: unknown) => {
    throw localFailure(error, "reading", source.path);
  });
  let bytes: number;
  try {
    bytes = await s.files.write(ref, {
      type: "file",
      mode,
      ...owner,
      read: (buffer, position) =>
        file.read(buffer, 0, buffer.length, position).then(
          (done) => done.bytesRead,
          (error: unknown) => {
            throw localFailure(error, "reading", source.path);
          },
        ),
    });
  } finally {
    await file.close();
  }
  s.report.files++;
  s.report.bytes += bytes;
  s.ctx.log.debug(`pushed ${source.path} to ${s.shown(to)} (${bytes} bytes)`);
}
