/**
 * One `GET /1.0/profiles?recursion=1&all-projects=true` for every profile of every project.
 * A client scoped to one project (a test's own) lists that project's profiles only (those of
 * `default` when it has none of its own).
 */
import type { IncusClient } from "../../../src/incus.js";
import { byCodeUnit, byName } from "../../../src/order.js";
import { isManaged, userConfig } from "../holding.js";
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
  const scoped = incus.project !== undefined && incus.project !== defaultProject;
  const profiles = await incus.request<IncusProfile[]>(
    "GET",
    scoped ? "/1.0/profiles?recursion=1" : "/1.0/profiles?recursion=1&all-projects=true",
    undefined,
    { what: "listing profiles" },
  );
  return profiles.map(liveProfile).sort((a, b) => byCodeUnit(a.project, b.project) || byName(a, b));
}

export function liveProfile(profile: IncusProfile): LiveProfile {
  const config = userConfig(profile.config);
  return {
    name: profile.name,
    project: profile.project ?? defaultProject,
    description: profile.description,
    config,
    devices: profile.devices ?? {},
    usedBy: profile.used_by ?? [],
    managed: isManaged(config),
  };
}
