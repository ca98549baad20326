/**
 * Orders a run's actions (pure) into waves, one plugin and one direction each: deletes first,
 * plugins in reverse order (nftables, lxc, network); then creates and modifies in plugin order
 * (network, lxc, nftables). A wave starts when the earlier ones have finished; within a wave,
 * an action waits for the actions it names in `needs`, and is skipped if one of them fails.
 */
import { byCodeUnit } from "../order.js";
import { type Action, describeRef, type ResourceRef } from "../plugin.js";

export interface PlanStep {
  key: string;
  action: Action;
  wave: number;
  /** Keys of steps that must succeed first, or this one is skipped. */
  needs: string[];
}

export interface Plan {
  steps: PlanStep[];
}

/**
 * The one key of a resource, from a ref or from the action that changes it (an action is a
 * ref to its resource): the engine matches needs, expects and replacements by it.
 */
export function refKey(ref: ResourceRef): string {
  return JSON.stringify([ref.plugin, ref.resource, ref.id]);
}

export function actionKey(action: Action): string {
  return JSON.stringify([action.kind, action.plugin, action.resource, action.id]);
}

/** `pluginOrder` lists plugin names in create order. */
export function buildPlan(actions: readonly Action[], pluginOrder: readonly string[]): Plan {
  const rank = (plugin: string): number => {
    const index = pluginOrder.indexOf(plugin);
    return index === -1 ? pluginOrder.length : index;
  };
  const last = pluginOrder.length;
  const waveOf = (action: Action): number =>
    action.kind === "delete" ? last - rank(action.plugin) : last + 1 + rank(action.plugin);

  const ordered = [...actions].sort(
    (a, b) =>
      waveOf(a) - waveOf(b) ||
      byCodeUnit(a.plugin, b.plugin) ||
      byCodeUnit(a.id, b.id) ||
      byCodeUnit(a.resource, b.resource),
  );
  const seen = new Set<string>();
  for (const action of ordered) {
    const key = actionKey(action);
    if (seen.has(key))
      throw new Error(`bug: two ${action.kind} actions for ${describeRef(action)}`);
    seen.add(key);
  }

  const byResource = new Map<string, Action[]>();
  for (const action of ordered) {
    const resource = refKey(action);
    const list = byResource.get(resource);
    if (list) list.push(action);
    else byResource.set(resource, [action]);
  }

  const steps = ordered.map((action): PlanStep => {
    const key = actionKey(action);
    const wave = waveOf(action);
    const needs = (action.needs ?? []).flatMap((need) => {
      const others = (byResource.get(refKey(need)) ?? []).filter((other) => other !== action);
      // A wave runs after the earlier ones only: a need on a later wave could never be met.
      if (others.length > 0 && others.every((other) => waveOf(other) > wave)) {
        throw new Error(
          `bug: ${action.kind} ${describeRef(action)} needs ${describeRef(need)}, whose actions all run after it`,
        );
      }
      return others.filter((other) => waveOf(other) <= wave).map(actionKey);
    });
    // A replacement (delete + create of one resource) creates only after its delete.
    const replaced = (byResource.get(refKey(action)) ?? [])
      // (A delete has no other delete of its resource: two are refused above.)
      .filter((other) => other !== action && other.kind === "delete")
      .map(actionKey);
    return { key, action, wave, needs: [...new Set([...needs, ...replaced])] };
  });
  return { steps };
}

export interface PlanSummary {
  create: number;
  modify: number;
  delete: number;
}

export function summarize(actions: readonly Action[]): PlanSummary {
  const summary: PlanSummary = { create: 0, modify: 0, delete: 0 };
  for (const action of actions) summary[action.kind]++;
  return summary;
}
