/**
 * One reconciliation, start to end: the single entry point the CLI (and later a watch mode or
 * a rollback) calls. It owns the sequencing and every overlap that makes a run fast:
 *
 *   lock (apply, check) → queries start on the raw file ─┐ (the host is read while the
 *   ledger opens early (apply)                            │  file is checked: schemas, the
 *   check the file ───────────────────────────────────────┘  plugins' checks)
 *   → prepare → diff → plan → settle earlier intents → apply (ledger records, interrupts)
 *   → verify, overlapped with the ledger's checkpoint and close.
 *
 * A check stops after the plan and, asked to, records what differs (src/engine/drift.ts).
 *
 * It prints nothing: progress goes to `onEvent`, the result is a RunReport. Errors before any
 * host change (an invalid file, a busy lock, a damaged ledger) are thrown; what happens once
 * the run changes the host is in the report.
 */
import { OpError } from "../errors.js";
import type { BlobStore } from "../ledger/blobs.js";
import { type Action, type Ctx, describeRef, type Plugin } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import type { StateDocument } from "../state/validate.js";
import { traced } from "../trace.js";
import type { StepOutcome } from "./dag.js";
import { recordDrift } from "./drift.js";
import { type RunImage, recordPreImage, storePostImage } from "./images.js";
import { type PlanSummary, summarize } from "./plan.js";
import {
  type ApplyReport,
  describePending,
  executePlan,
  type LedgerWriter,
  messageOf,
  newRunId,
  notConverged,
  type PlannedRun,
  planState,
  preloadApply,
  recordSettlements,
  type Settlement,
  type StartedQueries,
  settlePending,
  verifyConverged,
} from "./reconcile.js";
import { type ExcludedAction, excludeFromPlan, isExcluded, type ResourceId } from "./scope.js";

/** `plan` and `check` change nothing; `check` is `op apply --check` (drift is its answer). */
export type RunMode = "plan" | "check" | "apply";

export interface RunRequest {
  mode: RunMode;
  /** The state file's name, for messages. */
  file: string;
  /** The state file as parsed, not yet checked. */
  parsed: unknown;
  /** `--concurrency`, when given: it overrides every plugin's own bound. */
  concurrency?: number;
  /** Once aborted, no further action starts (those in flight finish and are recorded). */
  signal?: AbortSignal;
  /**
   * Only these plugins' sections are read, planned and applied (`op watch` after a hint about
   * one of them); the whole file is still checked. Unset: every plugin the file names.
   */
  plugins?: readonly string[];
  /** Resources this run does not enforce (src/engine/scope.ts): their actions are left out. */
  exclude?: readonly ResourceId[];
  /**
   * Mode "check" only: append a `drift` record per differing resource and sign a checkpoint
   * (src/engine/drift.ts). `op apply --check` sets it; the watch's observe mode gives a filter
   * that records only the drift it has not recorded yet (not again at every resync).
   */
  recordDrift?: boolean | ((action: Action) => boolean);
  /** Mode "apply": this run undoes that run (op rollback); its pre-image record says so. */
  rollbackOf?: string;
  /**
   * Mode "apply": called with the plan under the lock, before anything changes; throwing
   * refuses the run (`op apply PLANFILE` when the host moved since the plan was made).
   */
  expect?: (actions: readonly Action[]) => void;
}

/** A checked state file and the plugins it has sections for, in create order. */
export interface CheckedFile {
  document: StateDocument;
  plugins: Plugin[];
}

/** The ledger as a run uses it: the engine's writer, closed when the run is done. */
export type RunLedger = LedgerWriter & { close(): Promise<void> };

export interface RunDeps {
  registry: PluginRegistry;
  /** The context of this run's side effects (made once per run). */
  ctx(): Ctx;
  /** Schemas and every plugin's own checks; throws every problem of the file at once. */
  checkFile(parsed: unknown, file: string): Promise<CheckedFile>;
  ledger: {
    /** Whether a ledger is there to open (an apply with nothing to change opens only that). */
    exists(): boolean;
    /** Opens (creating it if needed) the ledger for writing. */
    open(): Promise<RunLedger>;
  };
  /** The host lock (apply and check; plan reads without it). */
  lock(): Promise<{ release(): void }>;
  /**
   * Where an apply keeps its pre-image (and post-image) blobs (src/engine/images.ts); without
   * it, a run keeps none and cannot be undone.
   */
  images?: BlobStore;
  /** This run's id in the ledger (default: a random UUID). */
  newRunId?: () => string;
  onEvent?: (event: RunEvent) => void;
}

export type RunEvent =
  /** Earlier runs' intents without an outcome, one line per run. */
  | { type: "pending"; lines: string[] }
  /** The plan of an apply, and what this run's read settles, before anything changes. */
  | { type: "planned"; actions: Action[]; settlements: Settlement[] }
  /** The run starts changing the host: from now on an interrupt lets actions in flight end. */
  | { type: "applying" }
  /** An action starts changing the host (its intent is in the ledger). */
  | { type: "started"; action: Action }
  | ({ type: "outcome" } & ActionOutcome)
  /** The host was read again after the apply: what still differs (none: converged). */
  | { type: "verified"; remaining: Action[] };

export interface ActionOutcome {
  action: Action;
  outcome: StepOutcome;
  /** Of a skipped action: the action it needed, which did not succeed. */
  needed?: Action;
}

export interface RunReport {
  mode: RunMode;
  file: string;
  /** The run's id in the ledger (apply; a check that recorded drift). */
  run?: string;
  /** The plan, in run order (without the excluded actions). */
  actions: Action[];
  /** Actions the run left out because of `RunRequest.exclude`. */
  excluded: ExcludedAction[];
  summary: PlanSummary;
  /** Earlier intents this run settled (apply). */
  settlements: Settlement[];
  /** What each action did, in the order they finished (apply). */
  outcomes: ActionOutcome[];
  /** Counts of failed, skipped, unknown and cancelled steps (apply with actions). */
  counts?: Omit<ApplyReport, "outcomes">;
  /** What still differs after the apply; undefined when the run did not verify. */
  remaining?: Action[];
  /** The host matches the file: nothing to do, or verified after the apply. */
  converged: boolean;
  /** The run was interrupted before its end. */
  interrupted: boolean;
  /** Why an apply did not succeed: failed or skipped steps, or drift left after verify. */
  error?: OpError;
}

export async function reconcile(request: RunRequest, deps: RunDeps): Promise<RunReport> {
  const ctx = deps.ctx();
  if (request.mode === "plan") return readPlan(request, deps, ctx);
  // A check takes the lock as an apply does: its answer (and its drift records) must not be
  // read while another apply is halfway through changing the host.
  if (request.mode === "check")
    return underLock(request, deps, () => checkUnderLock(request, deps, ctx));
  return underLock(request, deps, () => applyUnderLock(request, deps, ctx));
}

/** The plan alone: reads the host, changes and records nothing. */
async function readPlan(request: RunRequest, deps: RunDeps, ctx: Ctx): Promise<RunReport> {
  const started = await startQueries(request, ctx, deps.registry);
  const { planned, excluded } = await planScoped(request, deps, ctx, started);
  const actions = actionsOf(planned);
  return {
    mode: request.mode,
    file: request.file,
    actions,
    excluded,
    summary: summarize(actions),
    settlements: [],
    outcomes: [],
    converged: actions.length === 0,
    interrupted: false,
  };
}

/** A check: the plan, and with `recordDrift` the drift it found in the ledger. */
async function checkUnderLock(request: RunRequest, deps: RunDeps, ctx: Ctx): Promise<RunReport> {
  const report = await readPlan(request, deps, ctx);
  const { recordDrift: record } = request;
  const drift =
    record === undefined || record === false
      ? []
      : report.actions.filter(record === true ? () => true : record);
  if (drift.length === 0) return report;
  const run = (deps.newRunId ?? newRunId)();
  const ledger = await deps.ledger.open();
  try {
    await traced("ledger drift", () => recordDrift(ledger, run, drift));
  } finally {
    await ledger.close();
  }
  return { ...report, run };
}

/**
 * Runs `work` holding the host lock. The host is read only under the lock: a read taken while
 * another apply changes the host would plan from a state that is already gone. An invalid
 * file is still told as such rather than as a busy lock.
 */
async function underLock(
  request: RunRequest,
  deps: RunDeps,
  work: () => Promise<RunReport>,
): Promise<RunReport> {
  const lock = await deps.lock().catch(async (error: unknown) => {
    await deps.checkFile(request.parsed, request.file);
    throw error;
  });
  try {
    return await work();
  } finally {
    lock.release();
  }
}

async function applyUnderLock(request: RunRequest, deps: RunDeps, ctx: Ctx): Promise<RunReport> {
  const emit = (event: RunEvent) => deps.onEvent?.(event);
  const started = await startQueries(request, ctx, deps.registry);
  // While the plugins' queries wait on the host, the ledger and the step runner load and an
  // existing ledger opens: a run that has steps needs them at once, one without just closes it.
  const earlyLedger = openExistingLedger(deps);
  preloadApply();
  // One turn of the event loop first: the ledger's open is handed to LevelDB's thread before
  // the file's check takes this one, not after everything that keeps it busy until the plan.
  await new Promise((resolve) => setImmediate(resolve));
  let ledgerTaken = false;
  try {
    const { planned, excluded } = await planScoped(request, deps, ctx, started);
    const actions = actionsOf(planned);
    request.expect?.(actions);
    const early = await earlyLedger;
    if (early.error !== undefined) throw early.error;
    const existing = early.ledger;
    // Intents an earlier run left without an outcome (kill -9, a lost daemon): this run's
    // read of the host tells whether each target now matches the file.
    const pending = existing === undefined ? [] : await existing.pending();
    const pendingLines = describePending(pending);
    if (pendingLines.length > 0) emit({ type: "pending", lines: pendingLines });
    const settlements = settlePending(pending, planned);
    const run = (deps.newRunId ?? newRunId)();
    emit({ type: "planned", actions, settlements });
    const report: RunReport = {
      mode: "apply",
      file: request.file,
      run,
      actions,
      excluded,
      summary: summarize(actions),
      settlements,
      outcomes: [],
      converged: actions.length === 0,
      interrupted: false,
    };
    if (actions.length === 0) {
      if (existing !== undefined) await settleWithoutChanges(existing, run, settlements);
      return report;
    }

    const ledger = await traced("ledger open", async () => existing ?? (await deps.ledger.open()));
    ledgerTaken = true;
    let counts: ApplyReport;
    // Pre-images, for an undo: written before the first change (src/engine/images.ts).
    let pre: RunImage | undefined;
    const lives = new Map<string, unknown>();
    try {
      if (deps.images !== undefined) {
        const { rollbackOf } = request;
        const images = { store: deps.images, ...(rollbackOf === undefined ? {} : { rollbackOf }) };
        pre = await traced("pre-image", () => recordPreImage(planned, ctx, images, ledger, run));
      }
      await recordSettlements(ledger, run, settlements);
      emit({ type: "applying" });
      const stepByKey = new Map(planned.plan.steps.map((step) => [step.key, step]));
      counts = await executePlan(planned, ledger, ctx, {
        ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
        run,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
        onStart: (step) => emit({ type: "started", action: step.action }),
        onOutcome: (step, outcome) => {
          const needed =
            outcome.status === "skipped" ? stepByKey.get(outcome.because)?.action : undefined;
          const done = {
            action: step.action,
            outcome,
            ...(needed === undefined ? {} : { needed }),
          };
          report.outcomes.push(done);
          emit({ type: "outcome", ...done });
        },
      });
    } catch (error) {
      await ledger.close();
      throw error;
    }

    // The run's records are signed, synced and closed while verify reads the host again:
    // neither needs the other. Both are awaited whatever happens to the other, so that a
    // failed verify never cuts the ledger's sync short. Verify first: its processes start
    // before signing takes the thread. An interrupted run does not verify: it was asked to stop.
    const interrupted = request.signal?.aborted ?? false;
    const complete =
      counts.failed === 0 && counts.skipped === 0 && counts.unknown === 0 && !interrupted;
    const [verified, sealed] = await Promise.allSettled([
      complete
        ? traced("verify", () =>
            verifyConverged(planned, ctx, (name, live) => lives.set(name, live)),
          )
        : Promise.resolve(undefined),
      traced("ledger checkpoint", () => ledger.checkpoint()).finally(() =>
        traced("ledger close", () => ledger.close()),
      ),
    ]);
    if (sealed.status === "rejected") throw sealed.reason;
    if (verified.status === "rejected") throw verified.reason;
    // An excluded resource still differs, by design: it is not this run's drift.
    const remaining = verified.value?.filter((action) => !isExcluded(action, excluded));
    if (remaining !== undefined) emit({ type: "verified", remaining });
    // The post-image: what an undo checks the host still is before it overwrites it.
    const { images } = deps;
    const before = pre;
    if (before !== undefined && images !== undefined && remaining?.length === 0)
      await traced("post-image", () => storePostImage(before, lives, planned, ctx, images));
    const { outcomes: _byKey, ...countsOnly } = counts;
    const error = applyFailure(countsOnly, report.outcomes, remaining);
    return {
      ...report,
      counts: countsOnly,
      ...(remaining === undefined ? {} : { remaining }),
      converged: remaining !== undefined && remaining.length === 0,
      interrupted,
      ...(error === undefined ? {} : { error }),
    };
  } finally {
    if (!ledgerTaken) await (await earlyLedger).ledger?.close();
  }
}

/** The file checked whole, then planned for the request's plugins, less its excluded resources. */
async function planScoped(
  request: RunRequest,
  deps: RunDeps,
  ctx: Ctx,
  started: StartedQueries,
): Promise<{ planned: PlannedRun; excluded: ExcludedAction[] }> {
  const { document, plugins } = await deps.checkFile(request.parsed, request.file);
  const inScope = plugins.filter((p) => inRequest(request, p.name));
  const planned = await planState(document, inScope, ctx, started);
  return excludeFromPlan(
    planned,
    request.exclude ?? [],
    inScope.map((p) => p.name),
  );
}

/** Whether the run reads and plans `plugin`: every plugin, unless the request names some. */
function inRequest(request: RunRequest, plugin: string): boolean {
  return request.plugins === undefined || request.plugins.includes(plugin);
}

function actionsOf(planned: PlannedRun): Action[] {
  return planned.plan.steps.map((step) => step.action);
}

/**
 * Starts reading the host for the plugins a parsed state file names, before the file is
 * checked: the queries wait on ip, nft or Incus while the schemas run, instead of after them.
 * Reading is all a query does; if the file turns out invalid, its results are dropped.
 */
async function startQueries(
  request: RunRequest,
  ctx: Ctx,
  registry: PluginRegistry,
): Promise<StartedQueries> {
  const sections = (request.parsed as { plugins?: unknown } | null)?.plugins;
  if (typeof sections !== "object" || sections === null) return new Map();
  // Each plugin's section by its name (the file may use an alias as the key).
  const byName = new Map(
    Object.entries(sections).flatMap(([key, section]) => {
      const name = registry.named(key)?.name;
      return name === undefined || !inRequest(request, name) ? [] : [[name, section] as const];
    }),
  );
  // Loaded first, then queried in one go: each query starts its processes before this returns.
  const plugins = await registry.load(new Set(byName.keys()));
  return new Map(
    plugins.map((plugin) => {
      const live = plugin.query(ctx, byName.get(plugin.name));
      // Awaited by planState when the file is valid; otherwise no one does, which is no error.
      live.catch(() => {});
      return [plugin.name, live];
    }),
  );
}

/** A ledger opened while the host is read, or why it could not be. */
interface EarlyLedger {
  ledger?: RunLedger;
  error?: unknown;
}

/**
 * The ledger when one is there, opened early. Never rejects: the error is the run's to report
 * once the file is known to be valid, and it is reported even when nothing changes (a damaged
 * ledger exits 3 on a converged host too).
 */
async function openExistingLedger(deps: RunDeps): Promise<EarlyLedger> {
  if (!deps.ledger.exists()) return {};
  try {
    return { ledger: await deps.ledger.open() };
  } catch (error) {
    return { error };
  }
}

/**
 * A run with nothing to change still closes what earlier runs left open (settled records)
 * and signs records a killed run left unsigned.
 */
async function settleWithoutChanges(
  ledger: LedgerWriter,
  run: string,
  settlements: readonly Settlement[],
): Promise<void> {
  await recordSettlements(ledger, run, settlements);
  if (settlements.length > 0) await ledger.checkpoint();
  else await ledger.checkpointIfUnsigned();
}

/** What a skipped action needed: the action, or the plan key when it is not in the plan. */
export function neededText(because: string, needed: Action | undefined): string {
  return needed === undefined ? because : describeRef(needed);
}

/** A failed step's error with its hint (the hint says what to change), or why it was skipped. */
function whyNot({ outcome, needed }: ActionOutcome): string {
  if (outcome.status === "skipped")
    return `skipped: needs ${neededText(outcome.because, needed)}, which did not succeed`;
  if (outcome.status !== "failed") return "ok";
  const { error } = outcome;
  return error instanceof OpError && error.hint
    ? `${error.message} (${error.hint})`
    : messageOf(error);
}

/** Why an apply did not succeed, if it did not: failed or skipped steps, or remaining drift. */
function applyFailure(
  counts: Omit<ApplyReport, "outcomes">,
  outcomes: readonly ActionOutcome[],
  remaining: readonly Action[] | undefined,
): OpError | undefined {
  if (counts.failed > 0 || counts.skipped > 0 || counts.unknown > 0) {
    const unknown = counts.unknown > 0 ? `, ${counts.unknown} with an unknown outcome` : "";
    return new OpError(
      "apply-failed",
      `${counts.failed} action(s) failed, ${counts.skipped} skipped${unknown} (run ${counts.run})`,
      {
        details: outcomes
          .filter(({ outcome }) => outcome.status !== "ok")
          .map((done) => ({
            path: `${done.action.kind} ${describeRef(done.action)}`,
            message: whyNot(done),
          })),
        hint: "the ledger holds a failed (or unknown) record for each; fix the cause and run op apply again (it settles the unknown ones from what it reads)",
      },
    );
  }
  return remaining && remaining.length > 0 ? notConverged(remaining) : undefined;
}
