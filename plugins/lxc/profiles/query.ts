/**
 * One `GET /1.0/profiles?recursion=1&all-projects=true` for every profile of every project.
 * A client made for one project (the system tests' isolation) sees that project as the whole
 * host, as `default` (plugins/lxc/query.ts); the real `default`'s profiles, which Incus lists
 * when the project has none of its own, are `inherited` (plugins/lxc/objects.ts asListed).
 */
import type { IncusClient } from "../../../src/incus.js";
import { byCodeUnit, byName } from "../../../src/order.js";
import { asListed, type IncusObject, liveObject } from "../objects.js";
import type { Devices } from "../types.js";
import type { LiveProfile } from "./types.js";

export interface IncusProfile extends IncusObject {
  name: string;
  /** Absent in listings of one project. */
  project?: string;
  devices: Devices | null;
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
  return { name: profile.name, ...liveObject(profile), devices: profile.devices ?? {} };
}
