/**
 * The status document: what the last runs of op on this host did, for `op status` and the
 * metrics file. One small JSON file (OP_STATUS, default /var/lib/op/status.json), rewritten
 * whole after every run (a temporary file beside it, renamed over it, 0600), so a reader
 * never sees half of one. The ledger stays the record of what changed; this is a summary of
 * it that a monitoring check can read without opening the ledger.
 *
 * `op apply` (every mode) calls `recordRun`; `op watch` calls it after each of its runs and
 * `setFlapping`/`clearFlapping` when it stops or resumes enforcing a resource.
 *
 * Updates are read-modify-write without a lock of their own: two runs ending in the same
 * instant (a check refused by the lock while the watch's run ends) can lose one's counter
 * increment, never make a counter go back. The host lock is not held for this: a refused run
 * must still be able to say it was refused.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { RunMode } from "../engine/run.js";
import { OpError } from "../errors.js";
import { fileError, writeFileAtomic } from "../files.js";
import type { Settings } from "../host/settings.js";
import { acquireLock } from "../lock.js";
import { writeMetrics } from "./metrics.js";

/** Resource ids per plugin, as a run found them differing from the file. */
export type DriftByPlugin = Record<string, string[]>;

/** One run as the status document takes it. */
export interface RunSummary {
  /** When it ended (ISO 8601). */
  time: string;
  mode: RunMode;
  file: string;
  /** Its id in the ledger, when it wrote there. */
  run?: string;
  exit: number;
  durationSeconds: number;
  /** Actions planned (plan, check) or applied (apply). */
  actions: number;
  /**
   * What differs from the file after this run, as it saw it: a check's drift, an apply's
   * remaining drift ({} when it converged). Undefined: this run tells nothing about it.
   */
  drift?: DriftByPlugin;
  /** Why it failed, when it did. */
  error?: string;
}

export interface FlappingResource {
  plugin: string;
  id: string;
  /** When op stopped enforcing it. */
  since: string;
  why: string;
}

type Counters = Partial<Record<RunMode, number>>;

export interface StatusDocument {
  version: 1;
  lastRun?: Omit<RunSummary, "drift" | "error">;
  /** The end of the last run that succeeded (exit 0, or 2 for a check that found drift). */
  lastSuccess?: string;
  /** The duration of the last apply (mode apply), for the metric. */
  lastApplySeconds?: number;
  /** What differs now, as the last run that could tell saw it. */
  drift?: { time: string; resources: DriftByPlugin };
  /** The last run that found drift. */
  lastDrift?: { time: string; mode: RunMode; file: string; run?: string; resources: DriftByPlugin };
  lastError?: { time: string; mode: RunMode; file: string; message: string };
  flapping: FlappingResource[];
  runs: Counters;
  failures: Counters;
}

export function emptyStatus(): StatusDocument {
  return { version: 1, flapping: [], runs: {}, failures: {} };
}

/** A run failed unless it exited 0, or 2 from a check (drift is a check's answer, not a failure). */
export function failed(summary: Pick<RunSummary, "exit" | "mode">): boolean {
  return summary.exit !== 0 && !(summary.mode === "check" && summary.exit === 2);
}

/** The document after one more run (pure: the caller reads and writes it). */
export function mergeRun(document: StatusDocument, summary: RunSummary): StatusDocument {
  const { drift, error, ...run } = summary;
  const failure = failed(summary);
  const bump = (counters: Counters) => ({ ...counters, [run.mode]: (counters[run.mode] ?? 0) + 1 });
  const found = drift !== undefined && Object.values(drift).some((ids) => ids.length > 0);
  return {
    ...document,
    lastRun: run,
    ...(failure ? {} : { lastSuccess: run.time }),
    ...(run.mode === "apply" ? { lastApplySeconds: run.durationSeconds } : {}),
    ...(drift === undefined ? {} : { drift: { time: run.time, resources: drift } }),
    ...(found
      ? {
          lastDrift: {
            time: run.time,
            mode: run.mode,
            file: run.file,
            ...(run.run === undefined ? {} : { run: run.run }),
            resources: drift,
          },
        }
      : {}),
    ...(failure
      ? {
          lastError: {
            time: run.time,
            mode: run.mode,
            file: run.file,
            message: error ?? `exit ${run.exit}`,
          },
        }
      : {}),
    runs: bump(document.runs),
    failures: failure ? bump(document.failures) : document.failures,
  };
}

/** The document with `resource` marked flapping (replacing an earlier mark of it). */
export function withFlapping(document: StatusDocument, resource: FlappingResource): StatusDocument {
  return {
    ...document,
    flapping: [...withoutFlapping(document, resource).flapping, resource],
  };
}

/** The document without `resource`'s flapping mark; without any when none is named. */
export function withoutFlapping(
  document: StatusDocument,
  resource?: Pick<FlappingResource, "plugin" | "id">,
): StatusDocument {
  return {
    ...document,
    flapping:
      resource === undefined
        ? []
        : document.flapping.filter((f) => f.plugin !== resource.plugin || f.id !== resource.id),
  };
}

/** Where the status document is: the settings' OP_STATUS, or a path given directly. */
export type StatusLocation = Pick<Settings, "statusFile"> | string;

function pathOf(where: StatusLocation): string {
  return typeof where === "string" ? where : where.statusFile;
}

/**
 * The status document at `where`; undefined when there is none yet. A file that is not a
 * status document is an error naming it (a reader must not take garbage for "all is well").
 */
export function readStatus(where: StatusLocation): StatusDocument | undefined {
  const path = pathOf(where);
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw fileError(error, path, "cannot read the status file");
  }
  return parseStatus(text, path);
}

export function parseStatus(text: string, path: string): StatusDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const document = value as Partial<StatusDocument> | undefined;
  if (
    typeof document !== "object" ||
    document === null ||
    document.version !== 1 ||
    !Array.isArray(document.flapping) ||
    typeof document.runs !== "object" ||
    typeof document.failures !== "object"
  ) {
    throw new OpError("invalid-state", `${path} is not an op status document`, {
      hint: "op rewrites it after the next op apply; remove it to start the counters again",
    });
  }
  return document as StatusDocument;
}

/**
 * Reads, changes and rewrites the document (atomically, 0600), holding its own lock (an
 * `op apply` that found the host busy records its failure while another run records its
 * own). A damaged document is started again rather than blocking every later run: the
 * ledger keeps the history.
 */
export async function updateStatus(
  where: StatusLocation,
  change: (document: StatusDocument) => StatusDocument,
): Promise<StatusDocument> {
  const path = pathOf(where);
  const lock = await acquireLock(`${path}.lock`, { timeoutSeconds: statusLockSeconds });
  try {
    return rewrite(path, change);
  } finally {
    lock.release();
  }
}

/** How long a run waits for another that is writing the status document. */
const statusLockSeconds = 10;

function rewrite(
  path: string,
  change: (document: StatusDocument) => StatusDocument,
): StatusDocument {
  let current: StatusDocument;
  try {
    current = readStatus(path) ?? emptyStatus();
  } catch (error) {
    if (!(error instanceof OpError && error.code === "invalid-state")) throw error;
    current = emptyStatus();
  }
  const next = change(current);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw fileError(error, dirname(path), "cannot create the status file's directory");
  }
  writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`, 0o600, "status file");
  return next;
}

export interface RecordOptions {
  /** Also write the metrics file (metrics.ts) from the new document. */
  metricsFile?: string;
  /** The ledger's size, for the metrics file. */
  ledgerRecords?: number;
}

/** Adds one run to the document (and writes the metrics file from it when asked). */
export async function recordRun(
  where: StatusLocation,
  summary: RunSummary,
  options: RecordOptions = {},
): Promise<StatusDocument> {
  return withMetrics(await updateStatus(where, (document) => mergeRun(document, summary)), options);
}

export async function setFlapping(
  where: StatusLocation,
  resource: FlappingResource,
  options: RecordOptions = {},
): Promise<StatusDocument> {
  return withMetrics(
    await updateStatus(where, (document) => withFlapping(document, resource)),
    options,
  );
}

/** Clears one resource's flapping mark, or all of them (the file changed, the watch restarted). */
export async function clearFlapping(
  where: StatusLocation,
  resource?: Pick<FlappingResource, "plugin" | "id">,
  options: RecordOptions = {},
): Promise<StatusDocument> {
  return withMetrics(
    await updateStatus(where, (document) => withoutFlapping(document, resource)),
    options,
  );
}

/** Writes the metrics file from `status` when asked to; returns `status`. */
function withMetrics(status: StatusDocument, options: RecordOptions): StatusDocument {
  if (options.metricsFile !== undefined) {
    writeMetrics(options.metricsFile, {
      status,
      ...(options.ledgerRecords === undefined ? {} : { ledgerRecords: options.ledgerRecords }),
    });
  }
  return status;
}
