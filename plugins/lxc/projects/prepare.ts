/**
 * `plugins.lxc.projects` against the live projects: who holds each (owned or adopted), the
 * config op wants (an owned project's with Incus's feature defaults, so a project Incus
 * completed on create is not drift).
 */
import { configStrings, holdingOf } from "../holding.js";
import { defaultProject } from "../refs.js";
import { type LxcLive, type LxcSection, tags } from "../types.js";
import type { DesiredProject, DesiredProjects, LiveProject } from "./types.js";

/** What Incus sets on a project created without them (POST /1.0/projects). */
export const projectFeatureDefaults: Readonly<Record<string, string>> = {
  "features.images": "true",
  "features.profiles": "true",
  "features.storage.volumes": "true",
  "features.storage.buckets": "true",
};

export function prepareProjects(section: LxcSection, live: LxcLive, base: string): DesiredProjects {
  const byName = new Map((live.projects ?? []).map((project) => [project.name, project]));
  const desired: DesiredProjects = { present: [], absent: [] };
  for (const [index, spec] of (section.projects ?? []).entries()) {
    const path = `${base}/projects/${index}`;
    const current = byName.get(spec.name);
    const adopt = spec.adopt === true;
    // Deleting `default` is refused by the file's own check (check.ts).
    if ((spec.ensure ?? "present") === "absent") {
      desired.absent.push({ name: spec.name, path, adopt });
      continue;
    }
    const holding = holdingOf(current);
    const config = configStrings(spec.config);
    const project: DesiredProject = {
      name: spec.name,
      path,
      adopt,
      holding,
      config:
        holding === "owned"
          ? { ...projectFeatureDefaults, ...config, [tags.managed]: "true" }
          : config,
    };
    const description = spec.description ?? (holding === "owned" ? "" : undefined);
    if (description !== undefined) project.description = description;
    desired.present.push(project);
  }
  return desired;
}

/**
 * The project whose profiles a container or profile in `project` uses: its own, or
 * `default`'s when its `features.profiles` is false (as the file will have it, else as it is).
 */
export function profilesProject(
  project: string,
  declared: DesiredProjects,
  live: readonly LiveProject[],
): string {
  const wanted = declared.present.find((p) => p.name === project)?.config["features.profiles"];
  const now = live.find((p) => p.name === project)?.config["features.profiles"];
  return (wanted ?? now) === "false" ? defaultProject : project;
}

/** Whether a project exists now or the file declares it present (and not absent). */
export function projectKnown(
  project: string,
  declared: DesiredProjects,
  live: readonly LiveProject[],
): boolean {
  if (project === defaultProject) return true;
  if (declared.absent.some((p) => p.name === project)) return false;
  return declared.present.some((p) => p.name === project) || live.some((p) => p.name === project);
}
