/**
 * The file-only checks of `plugins.lxc.profiles` (op validate and prepare): each profile
 * declared once per project, never in a project the file gives no profiles of its own, and
 * never a project's `default` profile declared absent (Incus keeps it while the project lives).
 */

import type { ProblemSink } from "../objects.js";
import { declaredWithoutProfiles } from "../projects/check.js";
import { defaultProject } from "../refs.js";
import type { LxcSection } from "../types.js";

export function checkProfiles(section: LxcSection, base: string, problems: ProblemSink): void {
  const seen = new Map<string, string>();
  for (const [index, spec] of (section.profiles ?? []).entries()) {
    const path = `${base}/profiles/${index}`;
    const project = spec.project ?? defaultProject;
    const key = `${project}/${spec.name}`;
    const first = seen.get(key);
    if (first !== undefined)
      problems.add(
        `${path}/name`,
        `profile "${spec.name}" of project "${project}" is also declared by ${first}`,
      );
    else seen.set(key, path);
    if (project !== defaultProject && declaredWithoutProfiles(section, project))
      problems.add(`${path}/project`, withoutProfiles(spec.name, project));
    if (spec.name === "default" && (spec.ensure ?? "present") === "absent")
      problems.add(
        `${path}/ensure`,
        `a project's "default" profile cannot be deleted (Incus removes it with its project)`,
      );
  }
}

/** The refusal of a profile declared in a project that uses `default`'s profiles. */
export function withoutProfiles(profile: string, project: string): string {
  return `profile "${profile}" is declared in project "${project}", whose features.profiles is false: its containers use the profiles of project "default"; declare the profile without "project" (in "default"), or set features.profiles true on "${project}"`;
}
