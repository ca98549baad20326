/**
 * One run of the real engine in-process, as `op apply` does it (plan → apply through the DAG →
 * verify), for plugin system tests. Only the ledger is replaced, by one that keeps its records
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
import type { Action, Ctx, Plugin } from "../../src/plugin.js";
import { validateState } from "../../src/state/validate.js";

/** A ctx on the real runner that prints nothing. */
export function quietCtx(overrides: Partial<Ctx> = {}): Ctx {
  const quiet = () => {};
  return {
    exec: createRunner(),
    clock: () => new Date(),
    log: { debug: quiet, info: quiet, warn: quiet },
    cacheDir: undefined,
    options: { allowUplink: false },
    ...overrides,
  };
}

export type RecordedStep = Parameters<LedgerWriter["append"]>[0];

export function memoryLedger(
  earlier: RecordedStep[] = [],
): LedgerWriter & { records: RecordedStep[]; checkpoints: number } {
  const records: RecordedStep[] = [...earlier];
  let signedAt = records.length;
  const ledger = {
    records,
    checkpoints: 0,
    async append(input: RecordedStep) {
      records.push({ ...input });
    },
    async checkpoint() {
      ledger.checkpoints++;
      signedAt = records.length;
    },
    // As src/ledger defines it: an intent (or unknown outcome) that nothing closed later.
    async pending() {
      const closed = (record: RecordedStep, seq: number) =>
        records.some(
          (later, i) =>
            (later.status === "settled" && later.settles === seq) ||
            (i + 1 > seq &&
              later.run === record.run &&
              later.plugin === record.plugin &&
              later.target === record.target &&
              (later.status === "ok" || later.status === "failed")),
        );
      return records.flatMap((record, i) => {
        if (record.status !== "intent" || closed(record, i + 1)) return [];
        const outcome = records.find(
          (later, j) =>
            j > i &&
            later.run === record.run &&
            later.target === record.target &&
            later.status === "unknown",
        );
        return [
          {
            seq: i + 1,
            run: record.run,
            plugin: record.plugin,
            action: record.action,
            target: record.target,
            status: outcome === undefined ? ("intent" as const) : ("unknown" as const),
            ...(outcome?.error === undefined ? {} : { error: outcome.error }),
          },
        ];
      });
    },
    async checkpointIfUnsigned() {
      if (signedAt === records.length) return false;
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
