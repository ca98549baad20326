/**
 * What part of a file a run enforces (`op watch`): the plugins it plans, and resources it
 * leaves alone (a resource op stopped enforcing because something else keeps changing it).
 * Pure: it narrows a plan already made, so a scoped run reads, plans, records and verifies
 * exactly as a whole one does.
 */
import { type Action, describeRef, type ResourceRef } from "../plugin.js";
import { buildPlan } from "./plan.js";
import type { PlannedRun } from "./reconcile.js";

/** A resource as the ledger and the watch name it: its plugin and id (unique per plugin). */
export interface ResourceId {
  plugin: string;
  id: string;
}

/** An action a run left out, and why: the resource is excluded, or it needs one that is. */
export interface ExcludedAction {
  action: Action;
  /** The excluded resource it needed (absent: its own resource is excluded). */
  needs?: ResourceRef;
}

const idKey = (r: ResourceId) => JSON.stringify([r.plugin, r.id]);

/**
 * Drops from a plan the actions on excluded resources, and (transitively) those that need one
 * of them: they would only be skipped once the action they need did not run, and a skipped
 * step fails the run, which would count as a failure of a resource that did nothing wrong.
 */
export function excludeFromPlan(
  planned: PlannedRun,
  exclude: readonly ResourceId[],
  pluginOrder: readonly string[],
): { planned: PlannedRun; excluded: ExcludedAction[] } {
  if (exclude.length === 0) return { planned, excluded: [] };
  const dropped = new Set(exclude.map(idKey));
  const excluded: ExcludedAction[] = [];
  const left = new Set(planned.actions);
  for (const action of planned.actions) {
    if (dropped.has(idKey(action))) {
      excluded.push({ action });
      left.delete(action);
    }
  }
  // Resources whose actions were dropped; a need on a resource the plan does not change is met.
  const gone = new Set(excluded.map(({ action }) => idKey(action)));
  for (let changed = true; changed; ) {
    changed = false;
    for (const action of left) {
      const need = action.needs?.find((ref) => gone.has(idKey(ref)));
      if (need === undefined) continue;
      excluded.push({ action, needs: need });
      left.delete(action);
      gone.add(idKey(action));
      changed = true;
    }
  }
  const actions = planned.actions.filter((action) => left.has(action));
  return {
    planned: { ...planned, actions, plan: buildPlan(actions, pluginOrder) },
    excluded,
  };
}

/** Whether an action is on a resource a run left out (verify does not count it as drift). */
export function isExcluded(action: Action, excluded: readonly ExcludedAction[]): boolean {
  return excluded.some((e) => idKey(e.action) === idKey(action));
}

/** "delete nftables inet/t (needs network link br0, excluded)" for logs and reports. */
export function describeExcluded({ action, needs }: ExcludedAction): string {
  const why = needs === undefined ? "excluded" : `needs ${describeRef(needs)}, excluded`;
  return `${action.kind} ${describeRef(action)} (${why})`;
}
