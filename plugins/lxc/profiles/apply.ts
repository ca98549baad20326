/** A profile's create (POST), change in place (PUT of config, devices, description) or delete. */
import type { IncusClient } from "../../../src/incus.js";
import { unreachable } from "../../../src/plugin.js";
import { written } from "../holding.js";
import { inProject } from "../refs.js";
import type { LxcAction } from "../types.js";

type ProfileAction = Extract<LxcAction, { resource: "profile" }>;

const profilePath = (project: string, name: string) =>
  inProject(`/1.0/profiles/${encodeURIComponent(name)}`, project);

export async function applyProfile(action: ProfileAction, incus: IncusClient): Promise<void> {
  switch (action.kind) {
    case "create": {
      const { name, project, description, config, devices } = action.after;
      await incus.request(
        "POST",
        inProject("/1.0/profiles", project),
        { name, description: description ?? "", config, devices },
        { what: `creating profile ${action.id}` },
      );
      return;
    }
    case "modify": {
      const { before, after } = action;
      await incus.request(
        "PUT",
        profilePath(after.project, after.name),
        {
          config: written(after.config, before.config, after.holding),
          devices: written(after.devices, before.devices, after.holding),
          description: after.description ?? before.description,
        },
        { what: `changing profile ${action.id}` },
      );
      return;
    }
    case "delete": {
      const { profile } = action.before;
      await incus.request("DELETE", profilePath(profile.project, profile.name), undefined, {
        what: `deleting profile ${action.id}`,
      });
      return;
    }
    default:
      return unreachable(action);
  }
}
