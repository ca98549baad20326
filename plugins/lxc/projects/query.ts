/**
 * One `GET /1.0/projects?recursion=1` for every project. A client made for one project (the
 * system tests' isolation) sees that project as the whole host, as it does its containers
 * (plugins/lxc/query.ts): it is listed alone, as `default`.
 */
import type { IncusClient } from "../../../src/incus.js";
import { byName } from "../../../src/order.js";
import { type IncusObject, liveFields } from "../objects.js";
import { defaultProject } from "../refs.js";
import type { LiveProject } from "./types.js";

export interface IncusProject extends IncusObject {
  name: string;
}

export async function queryProjects(incus: IncusClient): Promise<LiveProject[]> {
  const what = { what: "listing projects" };
  const scope = incus.project;
  if (scope === undefined) {
    const projects = await incus.request<IncusProject[]>(
      "GET",
      "/1.0/projects?recursion=1",
      undefined,
      what,
    );
    return projects.map(liveProject).sort(byName);
  }
  const own = await incus.request<IncusProject>(
    "GET",
    `/1.0/projects/${encodeURIComponent(scope)}`,
    undefined,
    what,
  );
  return [liveProject({ ...own, name: defaultProject })];
}

export function liveProject(project: IncusProject): LiveProject {
  return { name: project.name, ...liveFields(project) };
}
