/**
 * Drift records: what `op apply --check` (and `op watch --observe`) found differing from the
 * file, kept in the ledger so that an auditor sees drift that was only detected, not just
 * what was corrected. One `drift` record per differing resource, then a signed checkpoint.
 *
 * The run (src/engine/run.ts) calls this under the host lock when a check asks for it
 * (`RunRequest.recordDrift`); the watch's observe mode gets the same through the same run.
 * `changes` is exactly what an intent record of the same action would carry (changesOf):
 * the plan's own form, so a drift record reads like the plan that would correct it.
 */
import { type Action, verbOf } from "../plugin.js";
import { changesOf, type LedgerWriter } from "./reconcile.js";

/** The ledger as drift recording needs it. */
export type DriftLedger = Pick<LedgerWriter, "append" | "checkpoint">;

/** The records a check with these actions appends (held actions differ too: they count). */
export function driftRecords(run: string, actions: readonly Action[]) {
  return actions.map((action) => ({
    run,
    plugin: action.plugin,
    action: verbOf(action),
    target: action.id,
    changes: changesOf(action),
    status: "drift" as const,
  }));
}

/**
 * Appends one drift record per action and signs a checkpoint; returns how many it wrote.
 * Nothing is written when nothing differs: a clean check leaves no trace in the ledger.
 */
export async function recordDrift(
  ledger: DriftLedger,
  run: string,
  actions: readonly Action[],
): Promise<number> {
  if (actions.length === 0) return 0;
  // Appended together: the ledger writes concurrent appends in one batch, in this order.
  await Promise.all(driftRecords(run, actions).map((record) => ledger.append(record)));
  await ledger.checkpoint();
  return actions.length;
}

/** What differs, per plugin: each resource as "kind id" (status and metrics show this). */
export function driftResources(actions: readonly Action[]): Record<string, string[]> {
  const resources: Record<string, string[]> = {};
  for (const action of actions) {
    const ids = resources[action.plugin] ?? [];
    ids.push(`${action.resource} ${action.id}`);
    resources[action.plugin] = ids;
  }
  return resources;
}
