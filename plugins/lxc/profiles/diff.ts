/**
 * Pure: the file's profiles vs the live ones → one create, modify or delete per profile. A
 * delete waits for the deletes of the containers using it in the same run (the guard refuses
 * one that a staying container uses); prune deletes only op's profiles, in the projects the
 * query saw.
 */

import type { ResourceRef } from "../../../src/plugin.js";
import { describe } from "../diff.js";
import {
  configChanges,
  deletedUsers,
  deleteReason,
  descriptionChanges,
  deviceChanges,
} from "../holding.js";
import { defaultProject, networkRef, profileId, projectRef, volumeRef } from "../refs.js";
import { type Devices, type LxcAction, type LxcLive, plugin } from "../types.js";
import type { DesiredProfiles, LiveProfile, ProfileDelete } from "./types.js";

const resource = "profile";

export function diffProfiles(
  desired: DesiredProfiles,
  prune: boolean,
  live: LxcLive,
  planned: readonly LxcAction[],
): LxcAction[] {
  const liveProfiles = live.profiles ?? [];
  const find = (project: string, name: string) =>
    liveProfiles.find((p) => p.project === project && p.name === name);
  const actions: LxcAction[] = [];
  for (const profile of desired.present) {
    const id = profileId(profile.project, profile.name);
    const current = find(profile.project, profile.name);
    if (current === undefined) {
      actions.push({
        kind: "create",
        plugin,
        resource,
        id,
        after: profile,
        reason: `new profile${profile.project === defaultProject ? "" : ` in project ${profile.project}`}`,
        // The engine drops a need on what has no action in this run.
        needs: [projectRef(profile.project), ...deviceNeeds(profile.devices, profile.project)],
      });
      continue;
    }
    const changes = [
      ...configChanges(profile.config, current.config, profile.holding),
      ...deviceChanges(profile.devices, current.devices, profile.holding),
      ...descriptionChanges(profile.description, current.description),
    ];
    if (changes.length === 0) continue;
    actions.push({
      kind: "modify",
      plugin,
      resource,
      id,
      before: current,
      after: profile,
      changes,
      reason: changes.map(describe).join(", "),
      ...(changes.some((c) => c.path.startsWith("devices."))
        ? { needs: deviceNeeds(profile.devices, profile.project) }
        : {}),
    });
  }

  const remove = (current: LiveProfile, path: string, why: string) => {
    const before: ProfileDelete = { profile: current, path };
    const after = deletedUsers(current.usedBy, planned);
    actions.push({
      kind: "delete",
      plugin,
      resource,
      id: profileId(current.project, current.name),
      before,
      reason: deleteReason(why, after),
      ...(after.length > 0 ? { needs: after } : {}),
    });
  };
  for (const gone of desired.absent) {
    const current = find(gone.project, gone.name);
    if (current?.managed) remove(current, gone.path, "ensure: absent");
  }
  if (prune) {
    const named = new Set(
      [...desired.present, ...desired.absent].map((p) => profileId(p.project, p.name)),
    );
    // Only in the projects the query saw: a client scoped to one project prunes only there.
    const seen = new Set((live.projects ?? []).map((p) => p.name));
    for (const current of liveProfiles) {
      if (!current.managed || current.name === "default" || !seen.has(current.project)) continue;
      if (named.has(profileId(current.project, current.name))) continue;
      remove(current, "/plugins/lxc/prune", "not in the file (prune)");
    }
  }
  return actions;
}

/**
 * The managed networks and custom volumes a profile's devices use: Incus checks that they exist
 * when the profile is written. A project without networks or volumes of its own uses the
 * default project's, so both are named; the one with no action this run is dropped.
 */
export function deviceNeeds(devices: Devices, project: string): ResourceRef[] {
  const projects = [...new Set([project, defaultProject])];
  return Object.values(devices).flatMap((device) => {
    if (device.type === "nic" && device.network !== undefined) {
      const network = device.network;
      return projects.map((p) => networkRef(p, network));
    }
    if (device.type === "disk" && device.pool !== undefined && device.source !== undefined) {
      const { pool, source } = device;
      return projects.map((p) => volumeRef(p, pool, source));
    }
    return [];
  });
}
