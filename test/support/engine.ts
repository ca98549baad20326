/**
 * One run of the real engine in-process, as `op apply` does it (plan → apply through the DAG →
 * verify), for plugin system tests: `reconcile` is the one such run every plugin's tests use. Only the ledger is replaced, by one that keeps its records
 * in memory: the ledger itself has its own tests, and these look at what was recorded.
 */
import {
  type ApplyReport,
  applyPlan,
  type LedgerWriter,
  messageOf,
  type PlannedRun,
  planState,
  verifyConverged,
} from "../../src/engine/reconcile.js";
import { createRunner, type Runner } from "../../src/exec.js";
import { createHost } from "../../src/host/index.js";
import { defaultSettings } from "../../src/host/settings.js";
import type { Action, Ctx, Plugin } from "../../src/plugin.js";
import { validateState } from "../../src/state/validate.js";

/** A plugin's two halves of preparing a section, as the engine runs them (src/engine/reconcile.ts). */
export async function prepareWith<Desired, Live, Normalised>(
  plugin: Plugin<Desired, Live, Normalised>,
  section: unknown,
  live: Live,
  ctx: Ctx,
  sections: ReadonlyMap<string, unknown> = new Map(),
): Promise<Desired> {
  return plugin.resolve(await plugin.normalise(section, ctx, { sections }), live, ctx);
}

/** A ctx on the real runner that prints nothing. */
export function quietCtx(overrides: Partial<Ctx> = {}): Ctx {
  const quiet = () => {};
  return {
    exec: createRunner(),
    clock: () => new Date(),
    log: { debug: quiet, info: quiet, warn: quiet },
    cacheDir: undefined,
    options: { allowUplink: false },
    settings: defaultSettings,
    host: createHost(defaultSettings),
    ...overrides,
  };
}

export type RecordedStep = Parameters<LedgerWriter["append"]>[0];

export function memoryLedger(
  earlier: RecordedStep[] = [],
): LedgerWriter & { records: RecordedStep[]; checkpoints: number } {
  const records: RecordedStep[] = [...earlier];
  let signed = records.length;
  const ledger = {
    records,
    checkpoints: 0,
    async append(input: RecordedStep) {
      records.push({ ...input });
    },
    async checkpoint() {
      ledger.checkpoints++;
      signed = records.length;
    },
    // As src/ledger's Ledger answers them; record n has seq n.
    async pending() {
      const open = new Map<string, Awaited<ReturnType<LedgerWriter["pending"]>>[number]>();
      records.forEach((record, i) => {
        const key = [record.run, record.plugin, record.action, record.target].join("\0");
        const { run, plugin, action, target, error } = record;
        const known = open.get(key);
        if (record.status === "intent") {
          open.set(key, { seq: i + 1, run, plugin, action, target, status: "intent" });
        } else if (record.status === "unknown") {
          open.set(key, {
            seq: known?.seq ?? i + 1,
            run,
            plugin,
            action,
            target,
            status: "unknown",
            ...(error === undefined ? {} : { error }),
          });
        } else if (record.status === "settled") {
          for (const [k, v] of open) if (v.seq === record.settles) open.delete(k);
        } else open.delete(key);
      });
      return [...open.values()].sort((a, b) => a.seq - b.seq);
    },
    async checkpointIfUnsigned() {
      if (records.length === signed) return false;
      await ledger.checkpoint();
      return true;
    },
  };
  return ledger;
}

/** Query → prepare → diff of one plugin's section, as `op plan` does. */
export async function planSection(
  plugin: Plugin,
  section: unknown,
  ctx: Ctx,
  key = plugin.name,
): Promise<PlannedRun> {
  const document = validateState(
    { version: 1, plugins: { [key]: section } },
    [plugin],
    "test.json",
  );
  return planState(document, [plugin], ctx);
}

export interface EngineRun {
  planned: PlannedRun;
  report: ApplyReport;
  records: RecordedStep[];
  /** Failure messages by action id. */
  errors: Map<string, string>;
  /** What verify still finds different (empty when converged; not run after a failure). */
  remaining: Action[];
}

/** Applies a planned run and verifies it, as `op apply` does. */
export async function applyAndVerify(
  planned: PlannedRun,
  ctx: Ctx,
  concurrency?: number,
): Promise<EngineRun> {
  const ledger = memoryLedger();
  const errors = new Map<string, string>();
  const report = await applyPlan(planned, ledger, ctx, {
    ...(concurrency === undefined ? {} : { concurrency }),
    onOutcome: (step, outcome) => {
      if (outcome.status === "failed") errors.set(step.action.id, messageOf(outcome.error));
    },
  });
  const remaining =
    report.failed === 0 && report.skipped === 0 ? await verifyConverged(planned, ctx) : [];
  return { planned, report, records: ledger.records, errors, remaining };
}

/** Every command a runner starts, for tests that count processes (the commands really run). */
export function recordingRunner(inner: Runner): Runner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    netns: inner.netns,
    run(command, args, options) {
      calls.push([command, ...args]);
      return inner.run(command, args, options);
    },
  };
}

export interface Reconciled {
  /** The plan. */
  actions: Action[];
  failed: number;
  skipped: number;
  /** Failure messages by action id. */
  errors: Map<string, string>;
  records: RecordedStep[];
  /** What verify still finds different: empty when converged; after a failure too. */
  remaining: Action[];
}

export interface ReconcileOptions {
  /** The section's key in the file (a plugin alias), the plugin's name by default. */
  key?: string;
  /** false: the plan only, nothing applied. */
  apply?: boolean;
  concurrency?: number;
  /** Sees the plan before it is applied, and throws to stop it (a test's safety net). */
  beforeApply?: (actions: readonly Action[]) => void;
}

/** `op apply` of one plugin's section in-process: plan, apply through the engine's DAG, verify. */
export async function reconcile(
  plugin: Plugin,
  section: unknown,
  ctx: Ctx,
  options: ReconcileOptions = {},
): Promise<Reconciled> {
  const planned = await planSection(plugin, section, ctx, options.key);
  options.beforeApply?.(planned.actions);
  if (options.apply === false) {
    const nothing = { failed: 0, skipped: 0, errors: new Map(), records: [], remaining: [] };
    return { actions: planned.actions, ...nothing };
  }
  const run = await applyAndVerify(planned, ctx, options.concurrency);
  // What is left is looked at even after a failure (applyAndVerify verifies only after success).
  const failedSome = run.report.failed > 0 || run.report.skipped > 0;
  return {
    actions: planned.actions,
    failed: run.report.failed,
    skipped: run.report.skipped,
    errors: run.errors,
    records: run.records,
    remaining: failedSome ? await verifyConverged(planned, ctx) : run.remaining,
  };
}
