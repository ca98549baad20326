/**
 * `op file push` and `op file pull`: copies between local paths and an Incus instance's files,
 * streamed through the files API (src/incus-files.ts). Not a change of state: nothing is
 * planned or written to the ledger (the README says why). What both need is here: the
 * `NAME:/PATH` check, the instance (refused when op did not create it, unless --any), and the
 * tally of what was copied.
 */
import { posix } from "node:path";
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";
import { createIncusFiles } from "../../../src/incus-files.js";
import type {
  Ctx,
  FileCopyReport,
  FilePull,
  FilePush,
  InstanceName,
  InstancePath,
} from "../../../src/plugin.js";
import { pullInto } from "./file-pull.js";
import { pushInto } from "./file-push.js";
import { session } from "./file-session.js";
import { type InstanceTarget, instanceTarget, parseInstanceName } from "./target.js";

/** A checked `NAME:/PATH`: `path` is absolute and normalised; a trailing `/` is kept. */
export interface CheckedPath {
  name: InstanceName;
  path: string;
  typed: string;
}

/**
 * Checks `NAME:/PATH` as typed. The path must be absolute: Incus resolves it inside the
 * instance's root, so `..` cannot leave it, and is only tidied away here.
 */
export function checkInstancePath(given: InstancePath): CheckedPath {
  const typed = `${given.instance}:${given.path}`;
  const name = parseInstanceName(given.instance);
  if (given.path === "")
    throw new OpError("usage", `${JSON.stringify(typed)} names no path in the instance`, {
      hint: "write NAME:/PATH, with an absolute path: ct1:/root/file",
    });
  if (given.path.includes("\0"))
    throw new OpError("usage", `${JSON.stringify(typed)}: a path cannot hold a NUL character`);
  if (!given.path.startsWith("/"))
    throw new OpError(
      "usage",
      `${JSON.stringify(typed)}: the path in the instance is not absolute`,
      {
        hint: `write it from the instance's root: ${given.instance}:/${given.path}`,
      },
    );
  return { name, path: posix.normalize(given.path), typed };
}

function incusOf(ctx: Ctx): IncusClient {
  if (ctx.incus === undefined)
    throw new OpError("daemon-unavailable", "op file needs Incus, and this run has no client");
  return ctx.incus;
}

const emptyReport = (): FileCopyReport => ({ files: 0, directories: 0, symlinks: 0, bytes: 0 });

export async function pushFiles(request: FilePush, ctx: Ctx): Promise<FileCopyReport> {
  const where = checkInstancePath(request.target);
  const incus = incusOf(ctx);
  const files = createIncusFiles(incus);
  const report = emptyReport();
  try {
    const target = await instanceTarget(incus, where.name, { any: request.any, running: false });
    await pushInto(session(files, target, report, ctx), request, where.path);
  } finally {
    files.close();
  }
  return report;
}

export async function pullFiles(request: FilePull, ctx: Ctx): Promise<FileCopyReport> {
  const wheres = request.sources.map(checkInstancePath);
  const incus = incusOf(ctx);
  const files = createIncusFiles(incus);
  const report = emptyReport();
  try {
    // Each instance once, all before anything is written.
    const targets = new Map<string, InstanceTarget>();
    for (const where of wheres) {
      const key = `${where.name.project ?? ""}/${where.name.name}`;
      if (!targets.has(key))
        targets.set(
          key,
          await instanceTarget(incus, where.name, { any: request.any, running: false }),
        );
    }
    const sources = wheres.map((where) => ({
      session: session(
        files,
        targets.get(`${where.name.project ?? ""}/${where.name.name}`) as InstanceTarget,
        report,
        ctx,
      ),
      path: where.path,
    }));
    await pullInto(sources, request);
  } finally {
    files.close();
  }
  return report;
}
