/** `op query --plugin lxc`'s projects table. */
import type { LiveReport } from "../../../src/plugin.js";
import { tags } from "../types.js";
import type { LiveProject } from "./types.js";

export function reportProjects(projects: readonly LiveProject[]): LiveReport {
  return {
    title: "projects",
    columns: ["name", "description", "config", "used by", "op"],
    rows: projects.map((project) => [
      project.name,
      project.description || "-",
      configWords(project.config),
      String(project.usedBy.length),
      project.managed ? "yes" : "no",
    ]),
  };
}

/** `key=value` pairs, op's own tag left out (the `op` column says it). */
export function configWords(config: Record<string, string>): string {
  const pairs = Object.entries(config)
    .filter(([key]) => key !== tags.managed)
    .map(([key, value]) => `${key}=${value}`);
  return pairs.join(" ") || "-";
}
