/**
 * Pure: a container's declared files against what it has. One change entry per file that
 * differs (`files./etc/motd`), whose before and after are the file's size, SHA-256, mode and
 * owner (FileState), never its bytes: the ledger records exactly these entries.
 */
import type { FieldChange } from "../../../src/plugin.js";
import { humanBytes } from "../paths.js";
import { type DesiredContainer, type LiveContainer, tags } from "../types.js";
import { pathsOfTag } from "./query.js";
import { type DesiredFile, type FileState, filePath, type LiveFile } from "./types.js";

/** What a change entry says a path holds: a file's state, or another kind of entry. */
type Held = FileState | { type: string; mode: string; uid: number; gid: number };

/** What the container has at a declared path: the query's reading, else prepare's, else none. */
export function liveFileOf(file: DesiredFile, live: LiveContainer): LiveFile | null {
  if (live.files !== undefined && Object.hasOwn(live.files, file.path))
    return live.files[file.path] ?? null;
  return file.seen ?? null;
}

function heldOf(now: LiveFile): Held {
  if (now.type === "file" && now.sha256 !== undefined && now.size !== undefined)
    return { sha256: now.sha256, size: now.size, mode: now.mode, uid: now.uid, gid: now.gid };
  return { type: now.type, mode: now.mode, uid: now.uid, gid: now.gid };
}

function same(now: Held, want: FileState): boolean {
  return (
    !("type" in now) &&
    now.sha256 === want.sha256 &&
    now.size === want.size &&
    now.mode === want.mode &&
    now.uid === want.uid &&
    now.gid === want.gid
  );
}

/** The declared files of `desired` that differ in `live`. */
export function fileChanges(desired: DesiredContainer, live: LiveContainer): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const file of desired.files ?? []) {
    const now = liveFileOf(file, live);
    const before = now === null ? undefined : heldOf(now);
    if (file.ensure === "absent") {
      if (before !== undefined) changes.push({ path: filePath(file.path), before });
      continue;
    }
    const want = file.want as FileState;
    if (before !== undefined && same(before, want)) continue;
    changes.push({
      path: filePath(file.path),
      ...(before === undefined ? {} : { before }),
      after: want,
    });
  }
  return changes;
}

const short = (sha256: string) => sha256.slice(0, 12);

/** `12 B, sha256 1a2b3c4d5e6f, 0644, 0:0`; another kind of entry is named as such. */
export function fileWords(held: Held): string {
  const owner = `${held.mode}, ${held.uid}:${held.gid}`;
  return "type" in held
    ? `a ${held.type}, ${owner}`
    : `${humanBytes(held.size)}, sha256 ${short(held.sha256)}, ${owner}`;
}

/** How many of a new container's files its create line names one by one. */
const namedInCreate = 5;

/** A new container's files, for its create line: the first few by name, then how many more. */
export function createdFilesWords(container: DesiredContainer): string {
  const written = (container.files ?? []).filter((file) => file.want !== undefined);
  const named = written
    .slice(0, namedInCreate)
    .map((file) => `, writes ${file.path} (${fileWords(file.want as FileState)})`);
  const more = written.slice(namedInCreate);
  if (more.length === 0) return named.join("");
  const bytes = more.reduce((sum, file) => sum + (file.want?.size ?? 0), 0);
  return `${named.join("")}, and ${more.length} more files (${humanBytes(bytes)})`;
}

/** A file change in a person's words, naming only what differs; undefined for other changes. */
export function describeFile(change: FieldChange): string | undefined {
  // The tag of the paths to read: a count, not a list of up to thousands of paths.
  if (change.path === `config.${tags.files}`) {
    const count = (value: unknown) =>
      pathsOfTag(typeof value === "string" ? value : undefined).length;
    return `declared files to read ${count(change.before)} → ${count(change.after)} (${tags.files})`;
  }
  if (!change.path.startsWith("files.")) return undefined;
  const path = change.path.slice("files.".length);
  const before = change.before as Held | undefined;
  const after = change.after as FileState | undefined;
  if (after === undefined) return `delete file ${path} (${before ? fileWords(before) : "missing"})`;
  if (before === undefined) return `create file ${path} (${fileWords(after)})`;
  if ("type" in before)
    return `replace ${path}, ${fileWords(before)}, with a file (${fileWords(after)})`;
  const parts: string[] = [];
  if (before.sha256 !== after.sha256 || before.size !== after.size) {
    parts.push(
      `content ${humanBytes(before.size)} sha256 ${short(before.sha256)} → ${humanBytes(after.size)} sha256 ${short(after.sha256)}`,
    );
  }
  if (before.mode !== after.mode) parts.push(`mode ${before.mode} → ${after.mode}`);
  if (before.uid !== after.uid || before.gid !== after.gid)
    parts.push(`owner ${before.uid}:${before.gid} → ${after.uid}:${after.gid}`);
  return `change file ${path}: ${parts.join("; ")}`;
}
