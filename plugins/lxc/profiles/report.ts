/** `op query --plugin lxc`'s profiles table. */
import type { LiveReport } from "../../../src/plugin.js";
import { configWords } from "../projects/report.js";
import type { LiveProfile } from "./types.js";

export function reportProfiles(profiles: readonly LiveProfile[]): LiveReport {
  return {
    title: "profiles",
    columns: ["project", "name", "description", "config", "devices", "used by", "op"],
    rows: profiles.map((profile) => [
      profile.project,
      profile.name,
      profile.description || "-",
      configWords(profile.config),
      Object.keys(profile.devices).sort().join(" ") || "-",
      String(profile.usedBy.length),
      profile.managed ? "yes" : "no",
    ]),
  };
}
