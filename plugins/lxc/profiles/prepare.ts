/**
 * `plugins.lxc.profiles` against the live profiles: who holds each (owned or adopted) and what
 * op wants of it; and every container's
 * project and profiles checked to exist or be declared, before anything changes.
 */
import { configStrings, deviceStrings, holdingOf } from "../holding.js";
import { inheritedProblem, type ProblemSink } from "../objects.js";
import { profilesProject, projectKnown } from "../projects/prepare.js";
import type { DesiredProjects } from "../projects/types.js";
import { defaultProject } from "../refs.js";
import { type DesiredContainer, type LxcLive, type LxcSection, tags } from "../types.js";
import { withoutProfiles } from "./check.js";
import type { DesiredProfile, DesiredProfiles } from "./types.js";

export function prepareProfiles(
  section: LxcSection,
  live: LxcLive,
  projects: DesiredProjects,
  base: string,
  problems: ProblemSink,
): DesiredProfiles {
  const liveProjects = live.projects ?? [];
  const desired: DesiredProfiles = { present: [], absent: [] };
  for (const [index, spec] of (section.profiles ?? []).entries()) {
    const path = `${base}/profiles/${index}`;
    const project = spec.project ?? defaultProject;
    const current = (live.profiles ?? []).find(
      (p) => p.project === project && p.name === spec.name,
    );
    if (current?.inherited) {
      problems.add(`${path}/name`, inheritedProblem(`profile "${spec.name}"`));
      continue;
    }
    const adopt = spec.adopt === true;
    // Deleting a `default` profile is refused by the file's own check (check.ts).
    if ((spec.ensure ?? "present") === "absent") {
      desired.absent.push({ name: spec.name, project, path, adopt });
      continue;
    }
    if (!projectKnown(project, projects, liveProjects)) {
      problems.add(`${path}/project`, `project "${project}" neither exists nor is declared`);
      continue;
    }
    // A file-only check already refused this when the file itself turns the profiles off.
    if (
      project !== defaultProject &&
      !projects.present.some((p) => p.name === project) &&
      profilesProject(project, projects, liveProjects) !== project
    ) {
      problems.add(`${path}/project`, withoutProfiles(spec.name, project));
      continue;
    }
    const holding = holdingOf(current);
    const config = configStrings(spec.config);
    const profile: DesiredProfile = {
      name: spec.name,
      project,
      path,
      adopt,
      holding,
      config: holding === "owned" ? { ...config, [tags.managed]: "true" } : config,
      devices: deviceStrings(spec.devices),
    };
    const description = spec.description ?? (holding === "owned" ? "" : undefined);
    if (description !== undefined) profile.description = description;
    desired.present.push(profile);
  }
  return desired;
}

/**
 * A container's project and profiles must exist or be declared present: refused with the JSON
 * path of the name, not left to fail halfway through a run.
 */
export function checkContainerRefs(
  containers: readonly DesiredContainer[],
  live: LxcLive,
  projects: DesiredProjects,
  profiles: DesiredProfiles,
  problems: ProblemSink,
): void {
  const liveProjects = live.projects ?? [];
  for (const container of containers) {
    if (!projectKnown(container.project, projects, liveProjects)) {
      problems.add(
        `${container.path}/project`,
        `project "${container.project}" neither exists nor is declared`,
      );
      continue;
    }
    const from = profilesProject(container.project, projects, liveProjects);
    const scope = from === defaultProject ? "" : ` in project "${from}"`;
    for (const [index, name] of container.profiles.entries()) {
      // Incus gives every project with profiles of its own a `default` one, and keeps it.
      if (name === "default") continue;
      const same = (p: { project: string; name: string }) => p.project === from && p.name === name;
      const where = `${container.path}/profiles/${index}`;
      if (profiles.absent.some(same))
        problems.add(
          where,
          `profile "${name}"${scope} is declared absent, but container ${container.name} uses it`,
        );
      else if (!profiles.present.some(same) && !(live.profiles ?? []).some(same))
        problems.add(where, `profile "${name}"${scope} neither exists nor is declared`);
    }
  }
}
