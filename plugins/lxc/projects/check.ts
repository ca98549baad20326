/**
 * The file-only checks of `plugins.lxc.projects` (op validate and prepare): names declared
 * once, feature keys Incus knows, and Incus's own `default` project touched only as allowed.
 */

import type { ProblemSink } from "../objects.js";
import { defaultProject } from "../refs.js";
import type { LxcSection } from "../types.js";

/** The `features.*` keys of an Incus project: which kinds of object it has of its own. */
export const projectFeatures = [
  "features.images",
  "features.profiles",
  "features.storage.volumes",
  "features.storage.buckets",
  "features.networks",
  "features.networks.zones",
];

export function checkProjects(section: LxcSection, base: string, problems: ProblemSink): void {
  const seen = new Map<string, string>();
  for (const [index, spec] of (section.projects ?? []).entries()) {
    const path = `${base}/projects/${index}`;
    const first = seen.get(spec.name);
    if (first !== undefined)
      problems.add(`${path}/name`, `project "${spec.name}" is also declared by ${first}`);
    else seen.set(spec.name, path);
    for (const key of Object.keys(spec.config ?? {})) {
      if (key.startsWith("features.") && !projectFeatures.includes(key)) {
        problems.add(
          `${path}/config/${key}`,
          `"${key}" is not a project feature Incus knows (${projectFeatures.join(", ")})`,
        );
      }
    }
    if (spec.name !== defaultProject) continue;
    if ((spec.ensure ?? "present") === "absent")
      problems.add(`${path}/ensure`, `project "default" is Incus's own: op never deletes it`);
    if (spec.description !== undefined)
      problems.add(
        `${path}/description`,
        `op changes only the config of project "default"; leave its description out`,
      );
  }
}

/** Whether the file turns a project's own profiles off (its profiles are then `default`'s). */
export function declaredWithoutProfiles(section: LxcSection, project: string): boolean {
  const spec = (section.projects ?? []).find((p) => p.name === project);
  return String(spec?.config?.["features.profiles"]) === "false";
}
