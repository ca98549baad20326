/**
 * What a push or a pull works with once the instance is known: the files API, the instance,
 * the tally of what was copied; and local failures as errors that name the path.
 */
import { OpError } from "../../../src/errors.js";
import type { IncusFiles, InstancePathRef } from "../../../src/incus-files.js";
import type { Ctx, FileCopyReport } from "../../../src/plugin.js";
import { defaultProject } from "../refs.js";
import type { InstanceTarget } from "./target.js";

/** What a push or a pull works with once the instance is known. */
export interface FileSession {
  files: IncusFiles;
  target: InstanceTarget;
  ref(path: string): InstancePathRef;
  /** `NAME:/PATH` for messages, with the project when it is not the default one. */
  shown(path: string): string;
  report: FileCopyReport;
  ctx: Ctx;
}

export function session(
  files: IncusFiles,
  target: InstanceTarget,
  report: FileCopyReport,
  ctx: Ctx,
): FileSession {
  const prefix = `${target.project === defaultProject ? "" : `${target.project}/`}${target.name}:`;
  return {
    files,
    target,
    ref: (path) => ({ instance: target.name, project: target.project, path }),
    shown: (path) => `${prefix}${path}`,
    report,
    ctx,
  };
}

/** A local file system failure as an OpError naming the path and what was being done. */
export function localFailure(error: unknown, doing: string, path: string): OpError {
  if (error instanceof OpError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = error instanceof Error ? error.message : String(error);
  return new OpError(
    code === "EACCES" || code === "EPERM" ? "permission-denied" : "file-error",
    `${doing} ${path}: ${reason}`,
    { cause: error },
  );
}
