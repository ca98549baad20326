/**
 * A run's report as the status document takes it: one function for `op apply` and the watch,
 * so both count and describe runs the same way.
 */
import { resolve } from "node:path";
import { driftResources } from "../engine/drift.js";
import { messageOf } from "../engine/reconcile.js";
import type { RunMode, RunReport } from "../engine/run.js";
import type { RunSummary } from "./status.js";

export interface FinishedRun {
  mode: RunMode;
  /** The state file as given ("-": stdin). */
  file: string;
  /** When the run started (Date.now()). */
  started: number;
  exit: number;
  /** Undefined when the run threw before it had one. */
  report?: RunReport;
  /** What the run threw, if it did. */
  error?: unknown;
  /** Default: now. */
  now?: Date;
}

export function runSummary(run: FinishedRun): RunSummary {
  const { report } = run;
  const now = run.now ?? new Date();
  // What differs after the run, when it can tell: a check's plan, an apply's verify (nothing
  // when it had nothing to do); a run that threw or did not verify tells nothing.
  const after =
    report === undefined
      ? undefined
      : run.mode === "apply"
        ? (report.remaining ?? (report.actions.length === 0 ? [] : undefined))
        : report.actions;
  const message = run.error !== undefined ? messageOf(run.error) : report?.error?.message;
  return {
    time: now.toISOString(),
    mode: run.mode,
    // Absolute: the status is read from anywhere (a state file from stdin stays "-").
    file: run.file === "-" ? run.file : resolve(run.file),
    ...(report?.run === undefined ? {} : { run: report.run }),
    exit: run.exit,
    durationSeconds: Math.max(0, now.getTime() - run.started) / 1000,
    actions: report?.actions.length ?? 0,
    ...(after === undefined ? {} : { drift: driftResources(after) }),
    ...(message === undefined ? {} : { error: message }),
  };
}
