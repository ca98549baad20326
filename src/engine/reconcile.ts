/**
 * The pipeline's steps: query live (plugins in parallel) → prepare → diff → plan → apply (DAG,
 * bounded concurrency) with ledger records around every host change → verify. run.ts
 * sequences them into one run.
 */
import { OpError, withContext } from "../errors.js";
import type { RecordStatus } from "../ledger/store.js";
import { isOutcomeUnknown } from "../outcome.js";
import {
  type Action,
  type ActionVerb,
  type Ctx,
  describeRef,
  type Plugin,
  type Problem,
  type RunOptions,
  unreachable,
  verbOf,
} from "../plugin.js";
import { ignoredBy, withoutIgnored } from "../state/ignore.js";
import type { StateDocument } from "../state/validate.js";
import { trace, traced } from "../trace.js";
import type { StepOutcome } from "./dag.js";
import { buildPlan, type Plan, type PlanStep, refKey } from "./plan.js";

/** A record's status (src/ledger/store.ts says what each means). */
export type { RecordStatus };

/** An intent of an earlier run with no ok/failed/settled record after it. */
export interface PendingIntent {
  seq: number;
  run: string;
  plugin: string;
  action: ActionVerb;
  target: string;
  status: "intent" | "unknown";
  error?: string;
}

/** What the engine needs of the ledger (src/ledger implements it). */
export interface LedgerWriter {
  append(input: {
    run: string;
    plugin: string;
    action: ActionVerb;
    target: string;
    changes?: unknown;
    status: RecordStatus;
    error?: string;
    settles?: number;
  }): Promise<unknown>;
  checkpoint(): Promise<unknown>;
  /** Intents without ok/failed/settled, oldest first. */
  pending(): Promise<PendingIntent[]>;
  /** Signs a checkpoint if records were appended since the last one; says whether it did. */
  checkpointIfUnsigned(): Promise<boolean>;
}

export interface PreparedPlugin {
  plugin: Plugin;
  /** The file's section: its `ignore` list hides objects from every live state read. */
  section: unknown;
  desired: unknown;
  /** Without what the section ignores (src/state/ignore.ts). */
  live: unknown;
}

export interface PlannedRun {
  prepared: PreparedPlugin[];
  actions: Action[];
  plan: Plan;
}

/** Actions of one plugin in flight at once, unless the plugin or the user says otherwise. */
export const defaultConcurrency = 8;

export interface ApplyReport {
  run: string;
  outcomes: Map<string, StepOutcome>;
  failed: number;
  skipped: number;
  /** Steps whose outcome op could not know (recorded `unknown`). */
  unknown: number;
  /** Steps not started because the run was interrupted. */
  cancelled: number;
  /** Steps not run because their action is held (Action.held): the host is left as it is. */
  held: number;
}

/** Live states being read, by plugin name (queries started before the file was checked). */
export type StartedQueries = ReadonlyMap<string, Promise<unknown>>;

/**
 * Query, prepare and diff every plugin the file has a section for. Changes nothing. A query
 * already in `started` (same ctx) is awaited instead of being run again.
 */
export async function planState(
  document: StateDocument,
  plugins: readonly Plugin[],
  ctx: Ctx,
  started: StartedQueries = new Map(),
): Promise<PlannedRun> {
  const inFile = plugins.filter((plugin) => document.sections.has(plugin.name));
  const prepared = await Promise.all(
    inFile.map(async (plugin): Promise<PreparedPlugin> => {
      const section = document.sections.get(plugin.name);
      // What the section ignores is gone before resolve, diff and guard: nothing can touch it.
      const live = phase(plugin, "query", async () =>
        withoutIgnored(
          plugin,
          section,
          await (started.get(plugin.name) ?? plugin.query(ctx, section)),
        ),
      );
      const file = {
        sections: document.sections,
        ...(ctx.options.stateDir === undefined ? {} : { stateDir: ctx.options.stateDir }),
      };
      const normalised = phase(plugin, "prepare", () => plugin.normalise(section, ctx, file));
      // Both are awaited: a host that could not be read explains a normalise that failed.
      const [read, made] = await Promise.allSettled([live, normalised]);
      if (read.status === "rejected") throw read.reason;
      if (made.status === "rejected") throw made.reason;
      const desired = await phase(plugin, "prepare", async () =>
        plugin.resolve(made.value, read.value, ctx),
      );
      return { plugin, section, desired, live: read.value };
    }),
  );
  const diffs = prepared.map(({ plugin, desired, live }) => diffOf(plugin, desired, live));
  const refusals = prepared.flatMap(
    ({ plugin, live }, i) => plugin.guard?.(diffs[i] ?? [], live, ctx.options) ?? [],
  );
  const actions = diffs.flat();
  refusals.push(...adoptionProblems(actions, ctx.options));
  if (refusals.length > 0) throw refusedPlan(refusals);
  warnUnmetExpectations(actions, ctx);
  trace(`diffed: ${actions.length} actions`);
  return {
    prepared,
    actions,
    plan: buildPlan(
      actions,
      plugins.map((p) => p.name),
    ),
  };
}

/**
 * The actions on objects op did not create that the file does not adopt (Adoption): each
 * refuses the plan, at the object's entry. `--adopt` adopts them all.
 */
export function adoptionProblems(actions: readonly Action[], options: RunOptions): Problem[] {
  if (options.adopt === true) return [];
  return actions.flatMap(({ adopt, kind, ...action }) =>
    [adopt ?? []].flat().flatMap((adoption) =>
      adoption.allowed
        ? []
        : [
            {
              path: adoption.path,
              message: `${adoption.what ?? describeRef(action)} exists and op did not create it, so op will not ${kind === "delete" ? "delete it" : "take it over"} unless it is adopted`,
              hint: 'add "adopt": true to its entry in the file, or run with --adopt to adopt every object the file names; nothing was changed',
            },
          ],
    ),
  );
}

/** A plan a plugin's guard refused: every problem listed, with what to do. */
export function refusedPlan(problems: readonly Problem[]): OpError {
  const hints = [...new Set(problems.flatMap((problem) => problem.hint ?? []))];
  const lines = problems.map(({ path, message }) => `${path}: ${message}`);
  return new OpError(
    "invalid-state",
    // Every problem in the message too: it is what a person reads first.
    `refusing the plan: ${lines.join("; ")}`,
    {
      details: problems.map(({ path, message }) => ({ path, message })),
      ...(hints.length > 0 ? { hint: hints.join("; ") } : {}),
    },
  );
}

/** An action that expects another to create something, when nothing in the run does. */
function warnUnmetExpectations(actions: readonly Action[], ctx: Ctx): void {
  const created = new Set(actions.filter((a) => a.kind !== "delete").map(refKey));
  for (const action of actions) {
    for (const expected of action.expects ?? []) {
      if (created.has(refKey(expected))) continue;
      ctx.log.warn(
        `${action.kind} ${describeRef(action)} needs ${describeRef(expected)}, which is not on the host and which nothing in this run creates: it will fail`,
      );
    }
  }
}

export interface ApplyOptions {
  /** `--concurrency`, when the user gave it: it overrides every plugin's own bound. */
  concurrency?: number;
  onOutcome?: (step: PlanStep, outcome: StepOutcome) => void;
  /** A step starts changing the host: its intent is recorded. */
  onStart?: (step: PlanStep) => void;
  /** Once aborted, no further step starts (those in flight finish and are recorded). */
  signal?: AbortSignal;
  /** The run's id in the ledger (default: a new one). */
  run?: string;
}

/** Applies a plan and signs the ledger's checkpoint after it (see executePlan). */
export async function applyPlan(
  planned: PlannedRun,
  ledger: LedgerWriter,
  ctx: Ctx,
  options: ApplyOptions,
): Promise<ApplyReport> {
  const report = await executePlan(planned, ledger, ctx, options);
  // Signs the run's records and syncs them to disk.
  if (planned.plan.steps.length > 0) {
    await traced("ledger checkpoint", () => ledger.checkpoint());
  }
  return report;
}

/**
 * Runs a plan's steps. Each step writes an `intent` record before it touches the host and an
 * `ok` or `failed` record after; a failed step does not stop the steps that do not need it.
 * The caller signs the checkpoint once the steps are done (run.ts does, while it verifies); a
 * run that stops on an error is checkpointed here all the same.
 */
export async function executePlan(
  planned: PlannedRun,
  ledger: LedgerWriter,
  ctx: Ctx,
  options: ApplyOptions,
): Promise<ApplyReport> {
  // Loaded here, not at the top: `op plan` and `--check` never run steps.
  const { runSteps } = await import("./dag.js");
  const run = options.run ?? newRunId();
  const pluginByName = new Map(planned.prepared.map(({ plugin }) => [plugin.name, plugin]));
  const stepByKey = new Map(planned.plan.steps.map((step) => [step.key, step]));

  const work = async (step: PlanStep): Promise<void> => {
    const { action } = step;
    const plugin = pluginByName.get(action.plugin) as Plugin;
    const record = { run, plugin: action.plugin, action: verbOf(action), target: action.id };
    // No intent on disk, no host change: a failed intent append fails the step untouched.
    await ledger.append({ ...record, changes: changesOf(action), status: "intent" });
    options.onStart?.(step);
    let applied: Awaited<ReturnType<Plugin["apply"]>>;
    try {
      applied = await phase(plugin, "apply", () => plugin.apply(action, ctx), action.id);
    } catch (error) {
      // A request sent to a daemon that then went silent may have been carried out.
      const status = isOutcomeUnknown(error) ? "unknown" : "failed";
      await ledger
        .append({ ...record, status, error: messageOf(error) })
        .catch((ledgerError: unknown) => {
          ctx.log.warn(
            `the ledger could not record that ${action.id} ${status === "failed" ? "failed" : "has an unknown outcome"}: ${messageOf(ledgerError)}`,
          );
        });
      throw error;
    }
    try {
      const recorded = applied === undefined ? undefined : applied.recorded;
      await ledger.append({
        ...record,
        status: "ok",
        ...(recorded === undefined ? {} : { changes: recorded }),
      });
    } catch (error) {
      throw new OpError(
        "apply-failed",
        `${action.kind} ${action.id} was applied, but the ledger could not record it: ${messageOf(error)}`,
        { context: { plugin: action.plugin, phase: "ledger", id: action.id } },
      );
    }
  };

  // A held action is not run and writes no ledger record: nothing of the host changes.
  const held = planned.plan.steps.filter((step) => step.action.held !== undefined);
  for (const step of held) {
    options.onOutcome?.(step, {
      key: step.key,
      status: "held",
      reason: step.action.held as string,
    });
  }
  const runnable = planned.plan.steps.filter((step) => step.action.held === undefined);
  let outcomes: Map<string, StepOutcome>;
  try {
    outcomes = await runSteps(runnable, work, {
      concurrencyOf: (step) =>
        options.concurrency ??
        pluginByName.get(step.action.plugin)?.concurrency ??
        defaultConcurrency,
      onOutcome: (outcome) => options.onOutcome?.(stepByKey.get(outcome.key) as PlanStep, outcome),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    // Still sign and sync what was recorded, without hiding the error that stopped the run.
    await ledger.checkpoint().catch((checkpointError: unknown) => {
      ctx.log.warn(`the ledger checkpoint failed too: ${messageOf(checkpointError)}`);
    });
    throw error;
  }
  const all = [...outcomes.values()];
  const count = (status: StepOutcome["status"]) => all.filter((o) => o.status === status).length;
  return {
    run,
    outcomes,
    failed: count("failed"),
    skipped: count("skipped"),
    unknown: count("unknown"),
    cancelled: count("cancelled"),
    held: held.length,
  };
}

export function newRunId(): string {
  return process.getBuiltinModule("node:crypto").randomUUID();
}

/** What a run found of an earlier run's intent without an outcome. */
export interface Settlement {
  intent: PendingIntent;
  /** In words, for the ledger and the output. */
  how: string;
}

/**
 * Settles earlier intents without an outcome from this run's plan (pure): the live state was
 * just read, so a target the plan does not touch matches the file now, and one it does is
 * re-done by this run. Intents of plugins this file has no section for stay pending: nothing
 * read this run tells about them; so do targets the section's `ignore` list may hide, which
 * this run did not look at either.
 */
export function settlePending(
  pending: readonly PendingIntent[],
  planned: PlannedRun,
): Settlement[] {
  const seen = new Map(
    planned.prepared.map(({ plugin, section }) => [plugin.name, ignoredTarget(section)]),
  );
  // The ledger names an action's resource by plugin and id (its target), unique per plugin.
  const targetKey = (plugin: string, id: string) => JSON.stringify([plugin, id]);
  const planFor = new Map(planned.actions.map((a) => [targetKey(a.plugin, a.id), a]));
  return pending
    .filter((intent) => {
      const ignored = seen.get(intent.plugin);
      return ignored !== undefined && !ignored(intent.target);
    })
    .map((intent) => {
      const action = planFor.get(targetKey(intent.plugin, intent.target));
      const was = intent.status === "unknown" ? "outcome unknown" : "interrupted";
      return {
        intent,
        how:
          action === undefined
            ? `${was}; this run found the host matching the file for ${intent.target}`
            : `${was}; this run found ${intent.target} still differing from the file and plans ${verbOf(action)}`,
      };
    });
}

/**
 * Whether a ledger target may be one the section's `ignore` list hides. A target is an action's
 * id (`inet/op_demo`, `PROJECT/NAME`, `br0`), so it is tried as a qualified name and by its
 * last segment as a plain one: a false match only leaves an intent pending a while longer.
 */
function ignoredTarget(section: unknown): (target: string) => boolean {
  const ignored = ignoredBy(section);
  if (ignored === undefined) return () => false;
  return (target) => ignored(target.slice(target.lastIndexOf("/") + 1), target);
}

/** Appends one `settled` record per settlement, under this run's id. */
export async function recordSettlements(
  ledger: LedgerWriter,
  run: string,
  settlements: readonly Settlement[],
): Promise<void> {
  for (const { intent, how } of settlements) {
    await ledger.append({
      run,
      plugin: intent.plugin,
      action: intent.action,
      target: intent.target,
      status: "settled",
      settles: intent.seq,
      changes: { how },
    });
  }
}

/** "run 3df1 was interrupted: 4 actions without an outcome", one line per earlier run. */
export function describePending(pending: readonly PendingIntent[]): string[] {
  const byRun = new Map<string, PendingIntent[]>();
  for (const intent of pending) byRun.set(intent.run, [...(byRun.get(intent.run) ?? []), intent]);
  return [...byRun.entries()].map(([run, intents]) => {
    const unknown = intents.filter((i) => i.status === "unknown").length;
    const open = intents.length - unknown;
    const parts = [
      ...(open > 0 ? [`${open} action${open === 1 ? "" : "s"} without an outcome`] : []),
      ...(unknown > 0 ? [`${unknown} whose outcome op could not know`] : []),
    ];
    return `run ${run.slice(0, 8)} was interrupted: ${parts.join(", ")} (${intents
      .map((i) => `${i.action} ${i.plugin} ${i.target}`)
      .join("; ")})`;
  });
}

/**
 * Starts loading the step runner so that it loads while the plugins' queries wait on the
 * host. An error surfaces where applyPlan imports it.
 */
export function preloadApply(): void {
  import("./dag.js").catch(() => {});
}

/** Queries again the plugins that changed; anything still different is reported. */
export async function verifyConverged(
  planned: PlannedRun,
  ctx: Ctx,
  /** Each plugin's state as verify read it (a run's post-image is taken from it). */
  onLive?: (plugin: string, live: unknown) => void,
): Promise<Action[]> {
  const touched = new Set(planned.actions.map((action) => action.plugin));
  const remaining = await Promise.all(
    planned.prepared
      .filter(({ plugin }) => touched.has(plugin.name))
      .map(async ({ plugin, section, desired }) => {
        const live = await phase(plugin, "verify", async () =>
          withoutIgnored(plugin, section, await plugin.query(ctx, section)),
        );
        onLive?.(plugin.name, live);
        return diffOf(plugin, desired, live);
      }),
  );
  return remaining.flat();
}

export function notConverged(remaining: readonly Action[]): OpError {
  const held = remaining.filter((action) => action.held !== undefined);
  if (held.length > 0 && held.length === remaining.length) {
    return new OpError(
      "not-converged",
      `${held.length} change${held.length === 1 ? " was" : "s were"} held, not applied: the host still differs from the file`,
      {
        details: held.map((a) => ({ path: `${a.kind} ${describeRef(a)}`, message: a.held ?? "" })),
        hint: 'allow what each one waits for (a restart: op apply --allow-restart, or "restart": "allowed" on the container) and run op apply again',
      },
    );
  }
  return new OpError(
    "not-converged",
    `the host still differs from the file after apply (${remaining.length} difference${remaining.length === 1 ? "" : "s"})`,
    {
      details: remaining.map((a) => ({ path: `${a.kind} ${describeRef(a)}`, message: a.reason })),
      hint: "something changed the host during the run, or a plugin cannot express this state; run `op plan` to see it",
    },
  );
}

function diffOf(plugin: Plugin, desired: unknown, live: unknown): Action[] {
  try {
    const actions = plugin.diff(desired, live);
    // Every action is on a kind its plugin declares: what the plan, ledger and refs rely on.
    const stray = actions.find(
      (action) =>
        action.plugin !== plugin.name || !Object.hasOwn(plugin.resources, action.resource),
    );
    if (stray !== undefined) {
      throw new Error(
        `bug: plugin ${plugin.name} planned ${stray.kind} ${describeRef(stray)}, not a resource kind it declares`,
      );
    }
    return actions;
  } catch (error) {
    throw withContext(error, { plugin: plugin.name, phase: "diff" });
  }
}

async function phase<T>(
  plugin: Plugin,
  name: string,
  work: () => Promise<T>,
  id?: string,
): Promise<T> {
  try {
    return await traced(`${plugin.name} ${name}${id === undefined ? "" : ` ${id}`}`, work);
  } catch (error) {
    throw withContext(error, {
      plugin: plugin.name,
      phase: name,
      ...(id === undefined ? {} : { id }),
    });
  }
}

/** What an action changes, as its intent record (and a drift record) carries it. */
export function changesOf(action: Action): unknown {
  switch (action.kind) {
    case "create":
      return { after: action.after };
    case "modify":
      return action.changes;
    case "delete":
      return { before: action.before };
    default:
      return unreachable(action);
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
