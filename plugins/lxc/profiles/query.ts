/**
 * One `GET /1.0/profiles?recursion=1&all-projects=true` for every profile of every project.
 * A client made for one project (the system tests' isolation) sees that project as the whole
 * host, as `default` (plugins/lxc/query.ts); the real `default`'s profiles, which Incus lists
 * when the project has none of its own, are `inherited` (plugins/lxc/objects.ts asListed).
 */
import type { IncusClient } from "../../../src/incus.js";
import { byCodeUnit, byName } from "../../../src/order.js";
import { isManaged, userConfig } from "../holding.js";
import { asListed } from "../objects.js";
import { defaultProject } from "../refs.js";
import type { Devices } from "../types.js";
import type { LiveProfile } from "./types.js";

export interface IncusProfile {
  name: string;
  /** Absent in listings of one project. */
  project?: string;
  description: string;
  config: Record<string, string> | null;
  devices: Devices | null;
  used_by: string[] | null;
}

export async function queryProfiles(incus: IncusClient): Promise<LiveProfile[]> {
  const listed = await incus.request<IncusProfile[]>(
    "GET",
    incus.project === undefined
      ? "/1.0/profiles?recursion=1&all-projects=true"
      : "/1.0/profiles?recursion=1",
    undefined,
    { what: "listing profiles" },
  );
  return asListed(incus, listed)
    .map(liveProfile)
    .sort((a, b) => byCodeUnit(a.project, b.project) || byName(a, b));
}

export function liveProfile(profile: IncusProfile & { inherited?: true }): LiveProfile {
  const config = userConfig(profile.config);
  return {
    name: profile.name,
    project: profile.project ?? defaultProject,
    description: profile.description,
    config,
    devices: profile.devices ?? {},
    usedBy: profile.used_by ?? [],
    managed: isManaged(config),
    ...(profile.inherited ? { inherited: true } : {}),
  };
}
