/**
 * Pure: declared networks vs live → one action each. A delete waits for the deletes of the
 * containers that use the network (their ids in `deletedContainers`).
 */
import { adoptionOf, declaredModify, deleteOf } from "../holding.js";
import { leavingIds, usersLeaving } from "../objects.js";
import { networkId } from "../refs.js";
import { type LxcAction, plugin } from "../types.js";
import type { DesiredNetwork, LiveNetwork } from "./types.js";

const resource = "network";

export function diffNetworks(
  desired: readonly DesiredNetwork[],
  live: readonly LiveNetwork[],
  prune: boolean,
  deletedContainers: ReadonlySet<string>,
): LxcAction[] {
  const actions: LxcAction[] = [];
  const byId = new Map(live.map((network) => [networkId(network.project, network.name), network]));
  const remove = (current: LiveNetwork, why: string, entry?: DesiredNetwork): LxcAction => {
    const needs = usersLeaving(current.usedBy, leavingContainers(deletedContainers));
    const id = networkId(current.project, current.name);
    const adoption = entry === undefined ? {} : adoptionOf(entry, current);
    return deleteOf(resource, id, current, why, needs, adoption);
  };
  for (const network of desired) {
    const id = networkId(network.project, network.name);
    const current = byId.get(id);
    if (network.ensure === "absent") {
      if (current !== undefined && !current.inherited)
        actions.push(remove(current, "ensure: absent", network));
      continue;
    }
    if (current === undefined) {
      const address = network.config["ipv4.address"];
      actions.push({
        kind: "create",
        plugin,
        resource,
        id,
        after: network,
        reason: `new ${network.type} network${address === undefined ? "" : ` ${address}`}`,
      });
      continue;
    }
    actions.push(...declaredModify(resource, id, current, network));
  }
  if (prune) {
    const named = new Set(desired.map((network) => networkId(network.project, network.name)));
    for (const current of live) {
      if (!current.managed || current.inherited) continue;
      if (named.has(networkId(current.project, current.name))) continue;
      actions.push(remove(current, "not in the file (prune)"));
    }
  }
  return actions;
}

/** The containers this run deletes, by id: a network's or volume's delete waits for theirs. */
export function leavingContainers(ids: ReadonlySet<string>) {
  return leavingIds({ containers: ids, profiles: new Set() });
}
