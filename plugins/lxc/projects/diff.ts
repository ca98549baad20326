/**
 * Pure: the file's projects vs the live ones → one create, modify or delete per project. A
 * delete waits for the deletes of what the project holds in the same run (the guard refuses
 * one that would still hold something); prune deletes only op's projects, never `default`.
 */
import { describe } from "../diff.js";
import {
  adoptionOf,
  comparedFor,
  configChanges,
  deleteOf,
  descriptionChanges,
  modifyOf,
} from "../holding.js";
import { deletedIn, deleteReason, usersLeaving } from "../objects.js";
import { defaultProject, projectId } from "../refs.js";
import { type LxcAction, type LxcLive, plugin } from "../types.js";
import type { DesiredProjects, LiveProject } from "./types.js";

const resource = "project";

export function diffProjects(
  desired: DesiredProjects,
  prune: boolean,
  live: LxcLive,
  planned: readonly LxcAction[],
): LxcAction[] {
  const liveProjects = live.projects ?? [];
  const find = (name: string) => liveProjects.find((p) => p.name === name);
  const actions: LxcAction[] = [];
  for (const project of desired.present) {
    const id = projectId(project.name);
    const current = find(project.name);
    if (current === undefined) {
      actions.push({ kind: "create", plugin, resource, id, after: project, reason: "new project" });
      continue;
    }
    const changes = [
      ...configChanges(project.config, current.config, comparedFor(project.holding)),
      ...descriptionChanges(project.description, current.description),
    ];
    const adoption = adoptionOf(project, current);
    actions.push(...modifyOf(resource, id, current, project, changes, describe, adoption));
  }

  const remove = (current: LiveProject, path: string, why: string, adopt = false) => {
    const after = usersLeaving(current.usedBy, deletedIn(planned));
    const reason = deleteReason(why, after);
    const before = { project: current, path };
    const adoption = adoptionOf({ path, adopt }, current);
    actions.push(deleteOf(resource, projectId(current.name), before, reason, after, adoption));
  };
  for (const gone of desired.absent) {
    const current = find(gone.name);
    if (current !== undefined && current.name !== defaultProject)
      remove(current, gone.path, "ensure: absent", gone.adopt);
  }
  if (prune) {
    const named = new Set([...desired.present, ...desired.absent].map((p) => p.name));
    for (const current of liveProjects) {
      if (!current.managed || current.name === defaultProject || named.has(current.name)) continue;
      remove(current, "/plugins/lxc/prune", "not in the file (prune)");
    }
  }
  return actions;
}
