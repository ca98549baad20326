/**
 * One `GET /1.0/projects?recursion=1` for every project. A client scoped to one project (a
 * test's own) sees that project only, as it sees only that project's containers.
 */
import type { IncusClient } from "../../../src/incus.js";
import { byName } from "../../../src/order.js";
import { isManaged, userConfig } from "../holding.js";
import { defaultProject } from "../refs.js";
import type { LiveProject } from "./types.js";

export interface IncusProject {
  name: string;
  description: string;
  config: Record<string, string> | null;
  used_by: string[] | null;
}

export async function queryProjects(incus: IncusClient): Promise<LiveProject[]> {
  const what = { what: "listing projects" };
  const scope = incus.project;
  const projects =
    scope === undefined || scope === defaultProject
      ? await incus.request<IncusProject[]>("GET", "/1.0/projects?recursion=1", undefined, what)
      : [
          await incus.request<IncusProject>(
            "GET",
            `/1.0/projects/${encodeURIComponent(scope)}`,
            undefined,
            what,
          ),
        ];
  return projects.map(liveProject).sort(byName);
}

export function liveProject(project: IncusProject): LiveProject {
  const config = userConfig(project.config);
  return {
    name: project.name,
    description: project.description,
    config,
    usedBy: project.used_by ?? [],
    managed: isManaged(config),
  };
}
