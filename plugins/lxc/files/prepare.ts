/**
 * The host's half of declared files: each `source` opened (a regular file within the size
 * limit, never one of op's own or under /proc, /sys, /dev, judged by its realpath so a symlink
 * cannot lead there) and hashed; and the files the live container's tag does not list yet read
 * now, so that the first plan after a file is declared shows only what really differs.
 */
import { closeSync, createReadStream, realpathSync } from "node:fs";
import { OpError } from "../../../src/errors.js";
import { openRegularFile } from "../../../src/files.js";
import type { IncusClient } from "../../../src/incus.js";
import { isWithin } from "../paths.js";
import type { DesiredContainer, LxcLive } from "../types.js";
import { eachBounded, readLiveFile } from "./query.js";
import { type DesiredFile, fileConcurrency, maxSourceBytes, originOf } from "./types.js";

/** Host trees a `source` may not come from, besides op's own directories. */
const kernelTrees = ["/proc", "/sys", "/dev"];

/** The value of the container's `user.op.files` tag: its declared paths, sorted, as JSON. */
export function filesTagOf(files: readonly DesiredFile[]): string {
  return JSON.stringify(files.map((file) => file.path).sort());
}

export async function prepareFiles(
  container: DesiredContainer,
  live: LxcLive,
  env: {
    incus: IncusClient | undefined;
    opDirs: readonly string[];
    problems: { add(path: string, message: string): void };
  },
): Promise<void> {
  const files = container.files ?? [];
  if (files.length === 0) return;
  for (const file of files) {
    const origin = originOf(file);
    if (origin.source === undefined || file.want === undefined) continue;
    try {
      const { sha256, size } = await hashSource(origin.source, env.opDirs);
      file.want = { ...file.want, sha256, size };
    } catch (error) {
      if (!(error instanceof OpError)) throw error;
      env.problems.add(`${origin.at}/source`, error.message);
    }
  }
  const current = live.containers.find(
    (c) => c.project === container.project && c.name === container.name,
  );
  if (current === undefined || env.incus === undefined) return;
  const incus = env.incus;
  const unread = files.filter((file) => current.files?.[file.path] === undefined);
  await eachBounded(unread, fileConcurrency, async (file) => {
    file.seen = await readLiveFile(incus, current, file.path);
  });
}

/** Why a source may not be copied into a container, or undefined when it may. */
export function sourceRefusal(real: string, opDirs: readonly string[]): string | undefined {
  const own = opDirs.find((dir) => isWithin(real, dir));
  if (own !== undefined)
    return `${real} is op's own (${own}: ledger, signing key, cache or lock), not something to copy into a container`;
  const kernel = kernelTrees.find((tree) => isWithin(real, tree));
  if (kernel !== undefined) return `${real} is under ${kernel}, not a file op copies`;
  return undefined;
}

/** SHA-256 and size of a source file, read once, without blocking on a FIFO or a device. */
export async function hashSource(
  source: string,
  opDirs: readonly string[],
): Promise<{ sha256: string; size: number }> {
  let real: string;
  try {
    real = realpathSync(source);
  } catch {
    throw new OpError("not-found", `source ${source} does not exist on this host`, {
      hint: "a relative source is taken from the state file's directory",
    });
  }
  const refusal = sourceRefusal(real, opDirs);
  if (refusal !== undefined) throw new OpError("invalid-state", refusal);
  const { fd, size } = openRegularFile(real, {
    what: "declared file's source",
    maxBytes: maxSourceBytes,
  });
  try {
    const hash = process.getBuiltinModule("node:crypto").createHash("sha256");
    for await (const chunk of createReadStream("", { fd, autoClose: false, start: 0 }))
      hash.update(chunk as Buffer);
    return { sha256: hash.digest("hex"), size };
  } finally {
    closeSync(fd);
  }
}
