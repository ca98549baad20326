/**
 * Reading declared files. Incus's file API has no bulk read: each file costs one GET (which
 * answers the bytes, with the mode and owner as X-Incus-* headers), so only the declared paths
 * are read, a few at a time. The instance listing cannot say which paths a file declares; the
 * container's `user.op.files` tag (the paths, as JSON) does, and a container without it costs
 * nothing. Paths the tag does not list yet are read by prepare (files/prepare.ts).
 */
import type { IncusClient } from "../../../src/incus.js";
import { defaultProject } from "../refs.js";
import { type LiveContainer, tags } from "../types.js";
import { sha256 } from "./check.js";
import { fileConcurrency, type LiveFile } from "./types.js";

/** Runs `work` on every item, at most `limit` at a time. */
export async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The files API's project option for a container (none for the default project). */
export function projectOption(where: { project: string }): { project?: string } {
  return where.project === defaultProject ? {} : { project: where.project };
}

/** One declared path as the container has it, or null when nothing is there. */
export async function readLiveFile(
  incus: IncusClient,
  where: { name: string; project: string },
  path: string,
): Promise<LiveFile | null> {
  const found = await incus.statFile(where.name, path, {
    ...projectOption(where),
    what: `reading declared file ${path} in ${where.name}`,
  });
  if (found === undefined) return null;
  const { body, ...rest } = found;
  return body === undefined ? rest : { ...rest, sha256: sha256(body), size: body.length };
}

/** The paths the tag lists; an unreadable tag (edited by hand) lists none. */
export function taggedPaths(container: LiveContainer): string[] {
  return pathsOfTag(container.config[tags.files]);
}

/** The paths a `user.op.files` value lists. */
export function pathsOfTag(tag: string | undefined): string[] {
  if (tag === undefined) return [];
  try {
    const paths: unknown = JSON.parse(tag);
    return Array.isArray(paths) ? paths.filter((path) => typeof path === "string") : [];
  } catch {
    return [];
  }
}

/** Reads, into each container's `files`, the paths its tag lists. */
export async function readDeclaredFiles(
  incus: IncusClient,
  containers: readonly LiveContainer[],
): Promise<void> {
  const work = containers.flatMap((container) => {
    const paths = taggedPaths(container);
    if (paths.length === 0) return [];
    const files: Record<string, LiveFile | null> = {};
    container.files = files;
    return paths.map((path) => ({ container, files, path }));
  });
  await eachBounded(work, fileConcurrency, async ({ container, files, path }) => {
    files[path] = await readLiveFile(incus, container, path);
  });
}
