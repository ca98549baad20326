/**
 * Pure: declared volumes vs live → one action each. Volumes are deleted only when the file
 * says `ensure: absent` (never by prune: they hold data); a delete waits for the deletes of
 * the containers they are attached to.
 */
import { adoptionOf, declaredModify, deleteOf } from "../holding.js";
import { leavingContainers } from "../networks/diff.js";
import { usersLeaving } from "../objects.js";
import { volumeId } from "../refs.js";
import { type LxcAction, plugin } from "../types.js";
import type { DesiredVolume, LiveVolume } from "./types.js";

const resource = "volume";

export function diffVolumes(
  desired: readonly DesiredVolume[],
  live: readonly LiveVolume[],
  deletedContainers: ReadonlySet<string>,
): LxcAction[] {
  const actions: LxcAction[] = [];
  const byId = new Map(live.map((volume) => [idOf(volume), volume]));
  for (const volume of desired) {
    const id = idOf(volume);
    const current = byId.get(id);
    if (volume.ensure === "absent") {
      if (current === undefined || current.inherited) continue;
      const needs = usersLeaving(current.usedBy, leavingContainers(deletedContainers));
      const reason = "ensure: absent (its data goes with it)";
      actions.push(deleteOf(resource, id, current, reason, needs, adoptionOf(volume, current)));
      continue;
    }
    if (current === undefined) {
      const size = volume.config.size;
      actions.push({
        kind: "create",
        plugin,
        resource,
        id,
        after: volume,
        reason: `new ${volume.contentType} volume in pool ${volume.pool}${size === undefined ? "" : `, ${size}`}`,
      });
      continue;
    }
    actions.push(...declaredModify(resource, id, current, volume));
  }
  return actions;
}

function idOf(volume: { project: string; pool: string; name: string }): string {
  return volumeId(volume.project, volume.pool, volume.name);
}
