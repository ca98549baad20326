/**
 * Writes and deletes declared files through Incus's file API, a few at a time. Each file is
 * read again first (one GET), so the step does what the container needs now whatever the
 * plan saw: Incus (6.0) keeps the mode and owner of a file it overwrites, so a file whose mode
 * or owner must change (or a symlink in its place) is deleted and written anew; a directory in
 * its place is refused. A missing parent directory is made (0755, root). Works on a stopped
 * container as on a running one.
 */
import { OpError } from "../../../src/errors.js";
import { readRegularFile } from "../../../src/files.js";
import type { IncusClient } from "../../../src/incus.js";
import type { FieldChange } from "../../../src/plugin.js";
import type { DesiredContainer } from "../types.js";
import { sha256 } from "./check.js";
import { eachBounded, projectOption } from "./query.js";
import {
  type DesiredFile,
  type FileState,
  fileConcurrency,
  filePath,
  maxSourceBytes,
  originOf,
} from "./types.js";

type Where = { name: string; project: string };

/**
 * Every declared file of a container just created (`changes` undefined), or those the
 * changes name.
 */
export async function applyFiles(
  incus: IncusClient,
  container: DesiredContainer,
  changes?: readonly FieldChange[],
): Promise<void> {
  const named = changes === undefined ? undefined : new Set(changes.map((change) => change.path));
  const files = (container.files ?? []).filter((file) => named?.has(filePath(file.path)) ?? true);
  // Every file is tried: one that cannot be written does not keep the others back.
  const failed: { file: DesiredFile; error: unknown }[] = [];
  const dirs: Directories = new Map();
  await eachBounded(files, fileConcurrency, (file) =>
    applyFile(incus, container, file, dirs).catch((error: unknown) => {
      failed.push({ file, error });
    }),
  );
  const [first] = failed;
  if (first === undefined) return;
  if (failed.length === 1) throw first.error;
  // The run's report shows an action's message, so each file's reason is in it.
  const reasons = failed.map(({ error }) =>
    error instanceof Error ? error.message : String(error),
  );
  throw new OpError(
    "command-failed",
    `${failed.length} of ${files.length} declared files of ${container.name} could not be written or deleted: ${reasons.join("; ")}`,
    { hint: "the other files were written" },
  );
}

/**
 * The directories one apply has made or found, by path: files written at once into the same
 * missing directory make it once (a second mkdir of it would fail).
 */
type Directories = Map<string, Promise<void>>;

async function applyFile(
  incus: IncusClient,
  where: Where,
  file: DesiredFile,
  dirs: Directories,
): Promise<void> {
  const options = projectOption(where);
  // Type, mode and owner only: the bytes are about to be replaced anyway.
  const now = await incus.statFile(where.name, file.path, { ...options, body: false });
  if (now?.type === "directory") {
    throw new OpError(
      "invalid-state",
      `${where.name}:${file.path} is a directory; op writes and deletes only files there`,
      { hint: `remove the directory by hand, or fix the path at ${originOf(file).at}` },
    );
  }
  if (file.ensure === "absent") {
    if (now !== undefined) await incus.deleteFile(where.name, file.path, options);
    return;
  }
  const want = file.want as FileState;
  const body = bodyOf(file, want);
  // Incus would keep the old mode and owner, and writes through a symlink.
  const remake =
    now !== undefined &&
    (now.type !== "file" || now.mode !== want.mode || now.uid !== want.uid || now.gid !== want.gid);
  if (remake) await incus.deleteFile(where.name, file.path, options);
  try {
    await incus.writeFile(where.name, file.path, body, want, options);
  } catch (error) {
    if (!(error instanceof OpError) || error.code !== "not-found") throw error;
    await makeParents(incus, where, file.path, dirs);
    await incus.writeFile(where.name, file.path, body, want, options);
  }
}

/** The bytes to write: the content, or the source read again and checked against the plan. */
function bodyOf(file: DesiredFile, want: FileState): Buffer {
  const origin = originOf(file);
  if (origin.bytes !== undefined) return origin.bytes;
  const source = origin.source as string;
  const bytes = readRegularFile(source, {
    what: "declared file's source",
    maxBytes: maxSourceBytes,
  });
  if (sha256(bytes) !== want.sha256) {
    throw new OpError("invalid-state", `${source} changed since the plan was made`, {
      hint: `run op again: the plan will show the new content (${origin.at}/source)`,
    });
  }
  return bytes;
}

/** Makes the missing directories above `path`, from the top down (0755, owned by root). */
async function makeParents(
  incus: IncusClient,
  where: Where,
  path: string,
  dirs: Directories,
): Promise<void> {
  const parts = path.split("/").slice(1, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    let made = dirs.get(dir);
    if (made === undefined) {
      made = makeDirectory(incus, where, dir, path);
      dirs.set(dir, made);
    }
    await made;
  }
}

async function makeDirectory(
  incus: IncusClient,
  where: Where,
  dir: string,
  path: string,
): Promise<void> {
  const options = projectOption(where);
  const found = await incus.statFile(where.name, dir, { ...options, body: false });
  if (found === undefined) {
    await incus.writeFile(where.name, dir, undefined, { mode: "0755", uid: 0, gid: 0 }, options);
  } else if (found.type !== "directory") {
    throw new OpError(
      "invalid-state",
      `${where.name}:${dir} is a ${found.type}, not a directory, so ${path} cannot be written`,
      { hint: `remove ${dir} in the container, or declare the file elsewhere` },
    );
  }
}
