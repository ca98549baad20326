/**
 * `op watch FILE`: the watch loop (src/watch/loop.ts) joined to the engine, the host lock, the
 * ledger and the signals. Each run is one `reconcile` of the file (apply, or check with
 * `--observe`), scoped to the plugins a hint concerns, waiting a bounded time for the lock a
 * manual `op apply` may hold. It logs one line per event to stderr and prints nothing else.
 */

import { changesOf, messageOf } from "../engine/reconcile.js";
import { type RunReport, reconcile } from "../engine/run.js";
import { OpError } from "../errors.js";
import type { Settings } from "../host/settings.js";
import { acquireLock } from "../lock.js";
import type { Action } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import { readStateFile } from "../state/load.js";
import type { HintSource } from "../watch/hint.js";
import { createLog, type LogFormat, type WatchLog } from "../watch/log.js";
import {
  type RunChange,
  startWatch,
  type WatchRunRequest,
  type WatchRunResult,
  watchDefaults,
} from "../watch/loop.js";
import { concernsFile, declaredNames } from "../watch/relevance.js";
import {
  type ApplyOptions,
  exitCodes,
  ledgerSize,
  noteRun,
  openLedger,
  paths,
  runDeps,
} from "./commands.js";
import { signalExitCode } from "./interrupt.js";

/** What the entry gives the watch that src/ may not build itself (the sources need plugins' ids). */
export interface WatchSeams {
  /** The event sources for a file whose sections are `plugins`. */
  sources(plugins: readonly string[], settings: Settings): HintSource[];
}

export interface WatchOptions extends ApplyOptions {
  observe?: boolean;
  debounce?: number;
  /** Minutes between full resyncs. */
  resync?: number;
  /** A resource corrected `count` times within `withinMinutes` is left alone (flapping). */
  flapping?: { count: number; withinMinutes: number };
  logFormat?: LogFormat;
  metricsFile?: string;
}

/** How long a watch run waits for the host lock before giving up until its next try. */
export const watchLockSeconds = 60;

export async function watchCommand(
  file: string,
  options: WatchOptions,
  registry: PluginRegistry,
  seams: WatchSeams | undefined,
): Promise<number> {
  if (file === "-") {
    throw new OpError("usage", "op watch cannot read its file from stdin", {
      hint: "give the file's path: SIGHUP re-reads it from there",
    });
  }
  // A metrics file that cannot be written is refused before the watch starts.
  if (options.metricsFile !== undefined) {
    const { checkMetricsPath } = await import("../status/metrics.js");
    checkMetricsPath(options.metricsFile);
  }
  const log = createLog(options.logFormat ?? "text", (line) => process.stderr.write(line));
  const deps = runDeps(file, options, registry, {
    allowUplink: options.allowUplink ?? false,
    allowRestart: options.allowRestart ?? false,
  });
  // The file is checked before anything starts: a watch of an invalid file is refused at once.
  let parsed = await readStateFile(file);
  const first = await deps.checkFile(parsed, file);
  const { document } = first;
  const plugins = [...document.sections.keys()];
  /** The plugins of the file now (a SIGHUP may change them). */
  let inFile = new Set(plugins);
  /** The objects the file names now: hints about others start no run. */
  let declared = declaredNames(document, first.plugins);
  const where = paths(options);
  const mode = options.observe ? "check" : "apply";
  const lockTimeout = options.lockTimeout ?? watchLockSeconds;
  const watchDeps = {
    ...deps,
    lock: () => acquireLock(where.lockFile, { timeoutSeconds: lockTimeout }),
  };

  const driftMemory = new DriftMemory();
  // Each run is noted in the status document (and the metrics file) as `op apply`'s are.
  const run = async (request: WatchRunRequest): Promise<WatchRunResult> => {
    const started = Date.now();
    try {
      const report = await reconcile(
        {
          mode,
          file,
          parsed,
          exclude: request.exclude,
          recordDrift: driftMemory.isNew,
          ...(request.plugins === undefined ? {} : { plugins: request.plugins }),
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        },
        watchDeps,
      );
      if (options.observe) driftMemory.remember(report.actions, request.plugins ?? inFile);
      await noteRun(file, options, { mode, started, exit: exitOf(report), report });
      return resultOf(report);
    } catch (error) {
      const exit = error instanceof OpError ? error.exitCode : 70;
      await noteRun(file, options, { mode, started, exit, error });
      return { corrected: [], failed: [], drift: [], error: errorText(error) };
    }
  };
  const status = statusSeam(options, where, log);
  // Flapping marks are this watch's own: a new watch (or a changed file) starts without them.
  await status.clearFlapping();

  const sources = seams?.sources(plugins, options.settings) ?? [];
  log("start", {
    file,
    mode: options.observe ? "observe" : "enforce",
    plugins,
    sources: sources.map((s) => s.name),
    "debounce-ms": options.debounce,
    "resync-min": options.resync,
    pid: String(process.pid),
  });
  const watch = startWatch({
    sources,
    run,
    log,
    relevant: (hint) => inFile.has(hint.plugin) && concernsFile(hint, declared),
    onFlapping: async (resource, corrections) => {
      await recordFlapping(where, lockTimeout, resource, corrections, log);
      await status.setFlapping(resource, corrections);
    },
    ...(options.debounce === undefined ? {} : { debounceMs: options.debounce }),
    ...(options.resync === undefined ? {} : { resyncMs: options.resync * 60_000 }),
    flapping: flappingLimit(options),
  });

  const reload = async () => {
    try {
      const next = await readStateFile(file);
      const checked = await deps.checkFile(next, file);
      if (JSON.stringify(next) === JSON.stringify(parsed)) {
        log("reload", { file, changed: false });
        return;
      }
      parsed = next;
      inFile = new Set(checked.document.sections.keys());
      declared = declaredNames(checked.document, checked.plugins);
      const added = [...checked.document.sections.keys()].filter((p) => !plugins.includes(p));
      log("reload", {
        file,
        changed: true,
        // The sources were chosen at start: these plugins' drift waits for a resync.
        "without-events": added.length > 0 ? added : undefined,
      });
      driftMemory.forget();
      await status.clearFlapping();
      watch.reload();
    } catch (error) {
      log("reload-refused", { file, error: errorText(error), keeping: "the file read before" });
    }
  };
  const onHup = () => void reload();
  process.on("SIGHUP", onHup);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals) => {
      for (const s of stopSignals) process.removeListener(s, stop);
      // A second signal does not wait for the run in flight.
      for (const s of stopSignals) process.once(s, (again) => process.exit(signalExitCode(again)));
      resolve(name);
    };
    for (const s of stopSignals) process.on(s, stop);
  });
  log("stopping", { signal, waiting: "for the run in flight to finish and be recorded" });
  process.removeListener("SIGHUP", onHup);
  await watch.stop();
  log("stopped", { signal });
  return 0;
}

const stopSignals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

/** A run's exit code as `op apply` (or `--check`) would have given it, for the status. */
export function exitOf(report: RunReport): number {
  if (report.mode === "check") return report.actions.length > 0 ? exitCodes.drift : exitCodes.ok;
  return report.error?.exitCode ?? exitCodes.ok;
}

/**
 * The status document's flapping marks (and the metrics file with them). Like a run's note, a
 * status that cannot be written is logged and does not stop the watch.
 */
/**
 * Observe mode's drift records: a resource's drift is recorded when it appears or changes, not
 * again at every resync while it lasts (drift left for a week would be 2,000 records of the
 * same thing). A resource found converged is forgotten, so drift that comes back is recorded.
 */
export class DriftMemory {
  /** By plugin and resource id: the changes last recorded, as JSON. */
  private readonly recorded = new Map<string, { plugin: string; changes: string }>();

  readonly isNew = (action: Action): boolean =>
    this.recorded.get(DriftMemory.key(action))?.changes !== JSON.stringify(changesOf(action));

  /** After a run that read `plugins`: `drift` is what differs there now (and is recorded). */
  remember(drift: readonly Action[], plugins: Iterable<string>): void {
    const read = new Set(plugins);
    for (const [key, { plugin }] of this.recorded) if (read.has(plugin)) this.recorded.delete(key);
    for (const action of drift) {
      this.recorded.set(DriftMemory.key(action), {
        plugin: action.plugin,
        changes: JSON.stringify(changesOf(action)),
      });
    }
  }

  /** A changed file: its drift is recorded anew. */
  forget(): void {
    this.recorded.clear();
  }

  private static key(action: Action): string {
    return JSON.stringify([action.plugin, action.id]);
  }
}

function flappingLimit(options: WatchOptions): { count: number; withinMs: number } {
  return options.flapping === undefined
    ? watchDefaults.flapping
    : { count: options.flapping.count, withinMs: options.flapping.withinMinutes * 60_000 };
}

function statusSeam(options: WatchOptions, where: ReturnType<typeof paths>, log: WatchLog) {
  const recordOptions = async () => {
    if (options.metricsFile === undefined) return {};
    const ledgerRecords = await ledgerSize(where);
    return {
      metricsFile: options.metricsFile,
      ...(ledgerRecords === undefined ? {} : { ledgerRecords }),
    };
  };
  const guarded = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      log("status-not-recorded", { what, error: errorText(error) });
    }
  };
  return {
    clearFlapping: () =>
      guarded("flapping cleared", async () => {
        const { clearFlapping } = await import("../status/index.js");
        await clearFlapping(options.settings, undefined, await recordOptions());
      }),
    setFlapping: (resource: RunChange, corrections: number) =>
      guarded("flapping", async () => {
        const { setFlapping } = await import("../status/index.js");
        await setFlapping(
          options.settings,
          {
            plugin: resource.plugin,
            id: resource.id,
            since: new Date().toISOString(),
            why: `corrected ${corrections} times within ${flappingLimit(options).withinMs / 60_000} min: something else keeps changing it`,
          },
          await recordOptions(),
        );
      }),
  };
}

/** The engine's report as the loop counts it: what was corrected, failed, or left differing. */
export function resultOf(report: RunReport): WatchRunResult {
  const change = (action: Action): RunChange => ({
    plugin: action.plugin,
    id: action.id,
    kind: action.kind,
  });
  if (report.mode !== "apply")
    return { corrected: [], failed: [], drift: report.actions.map(change) };
  const by = (statuses: readonly string[]) =>
    report.outcomes
      .filter(({ outcome }) => statuses.includes(outcome.status))
      .map(({ action }) => change(action));
  const failed = by(["failed", "skipped", "unknown"]);
  // Applied but still differing at verify: as good as failed (something undid it at once, or
  // the plugin cannot express it); it backs off like a failure.
  const stillDiffering = (report.remaining ?? [])
    .filter((action) => action.held === undefined)
    .map(change);
  const same = (a: RunChange) => (b: RunChange) => a.plugin === b.plugin && a.id === b.id;
  const corrected = by(["ok"]).filter((c) => !stillDiffering.some(same(c)));
  return {
    corrected,
    failed: [...failed, ...stillDiffering.filter((c) => !failed.some(same(c)))],
    drift: by(["held"]),
  };
}

/** An error on one log line: its message, every detail (a file's problems), its hint. */
function errorText(error: unknown): string {
  if (!(error instanceof OpError)) return messageOf(error);
  const details = error.details.length > 0 ? `: ${error.details.join("; ")}` : "";
  return `${error.message}${details}${error.hint ? ` (${error.hint})` : ""}`;
}

/**
 * A `flapping` record in the ledger: an auditor sees that op stopped enforcing a resource,
 * and why. Written under the host lock, like every other write to the ledger.
 */
async function recordFlapping(
  where: ReturnType<typeof paths>,
  lockTimeout: number,
  resource: RunChange,
  corrections: number,
  log: WatchLog,
): Promise<void> {
  const lock = await acquireLock(where.lockFile, { timeoutSeconds: lockTimeout });
  try {
    const ledger = await openLedger(where, true);
    try {
      const { newRunId } = await import("../engine/reconcile.js");
      await ledger.append({
        run: newRunId(),
        plugin: resource.plugin,
        // What op last did to put it back.
        action: resource.kind,
        target: resource.id,
        status: "flapping",
        changes: {
          corrections,
          note: "op watch no longer enforces this resource until the file changes or op watch restarts",
        },
      });
      await ledger.checkpoint();
    } finally {
      await ledger.close();
    }
  } finally {
    lock.release();
  }
  log("flapping-recorded", { plugin: resource.plugin, id: resource.id });
}
