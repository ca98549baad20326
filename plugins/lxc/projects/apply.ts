/** A project's create (POST), change in place (PUT of config and description) or delete. */
import type { IncusClient } from "../../../src/incus.js";
import { unreachable } from "../../../src/plugin.js";
import { written } from "../holding.js";
import type { LxcAction } from "../types.js";

type ProjectAction = Extract<LxcAction, { resource: "project" }>;

const projectPath = (name: string) => `/1.0/projects/${encodeURIComponent(name)}`;

export async function applyProject(action: ProjectAction, incus: IncusClient): Promise<void> {
  switch (action.kind) {
    case "create": {
      const { name, description, config } = action.after;
      await incus.request(
        "POST",
        "/1.0/projects",
        { name, description: description ?? "", config },
        { what: `creating project ${name}` },
      );
      return;
    }
    case "modify": {
      const { before, after } = action;
      await incus.request(
        "PUT",
        projectPath(after.name),
        {
          config: written(after.config, before.config, after.holding),
          description: after.description ?? before.description,
        },
        { what: `changing project ${after.name}` },
      );
      return;
    }
    case "delete":
      await incus.request("DELETE", projectPath(action.before.project.name), undefined, {
        what: `deleting project ${action.before.project.name}`,
      });
      return;
    default:
      return unreachable(action);
  }
}
