/**
 * Pure: the file's profiles vs the live ones → one create, modify or delete per profile. A
 * delete waits for the deletes of the containers using it in the same run (the guard refuses
 * one that a staying container uses); prune deletes only op's profiles, in the projects the
 * query saw.
 */

import type { ResourceRef } from "../../../src/plugin.js";
import { describe } from "../diff.js";
import {
  adoptionOf,
  comparedFor,
  configChanges,
  deleteOf,
  descriptionChanges,
  deviceChanges,
  modifyOf,
} from "../holding.js";
import { deletedIn, deleteReason, usersLeaving } from "../objects.js";
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
    const compared = comparedFor(profile.holding);
    const changes = [
      ...configChanges(profile.config, current.config, compared),
      ...deviceChanges(profile.devices, current.devices, compared),
      ...descriptionChanges(profile.description, current.description),
    ];
    // A new device may name a network or volume this run creates: Incus checks it exists.
    const needs = changes.some((c) => c.path.startsWith("devices."))
      ? deviceNeeds(profile.devices, profile.project)
      : [];
    const adoption = adoptionOf(profile, current);
    for (const modify of modifyOf(resource, id, current, profile, changes, describe, adoption))
      actions.push(needs.length > 0 ? { ...modify, needs } : modify);
  }

  for (const leaving of profilesLeaving(desired, liveProfiles, prune)) {
    const { profile: current, path, why } = leaving;
    const after = usersLeaving(current.usedBy, deletedIn(planned));
    const id = profileId(current.project, current.name);
    const reason = deleteReason(why, after);
    const adoption = adoptionOf({ path, adopt: leaving.adopt }, current);
    actions.push(deleteOf(resource, id, { profile: current, path }, reason, after, adoption));
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

/**
 * The profiles this run deletes: those the file marks absent (one op did not create by
 * adoption, `adopt`), and with prune op's own it no longer names (never a project's
 * `default`). An inherited profile is another project's (objects.ts asListed): never deleted
 * from here.
 */
export function profilesLeaving(
  desired: DesiredProfiles,
  live: readonly LiveProfile[],
  prune: boolean,
): (ProfileDelete & { why: string; adopt: boolean })[] {
  const ours = (p: LiveProfile) => p.managed && !p.inherited;
  const leaving = desired.absent.flatMap((gone) => {
    const current = live.find((p) => p.project === gone.project && p.name === gone.name);
    return current !== undefined && !current.inherited && current.name !== "default"
      ? [{ profile: current, path: gone.path, why: "ensure: absent", adopt: gone.adopt }]
      : [];
  });
  if (!prune) return leaving;
  const named = new Set(
    [...desired.present, ...desired.absent].map((p) => profileId(p.project, p.name)),
  );
  for (const current of live) {
    if (!ours(current) || current.name === "default") continue;
    if (named.has(profileId(current.project, current.name))) continue;
    const why = "not in the file (prune)";
    leaving.push({ profile: current, path: "/plugins/lxc/prune", why, adopt: false });
  }
  return leaving;
}
