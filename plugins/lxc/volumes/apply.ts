/** One volume action through the Incus API: create, change the file's keys, or delete. */
import type { IncusClient } from "../../../src/incus.js";
import { type ActionOn, unreachable } from "../../../src/plugin.js";
import { inProject } from "../refs.js";
import type { LxcKinds } from "../types.js";

export async function applyVolume(
  action: ActionOn<"volume", LxcKinds["volume"]>,
  incus: IncusClient,
): Promise<void> {
  switch (action.kind) {
    case "create": {
      const volume = action.after;
      await incus.request(
        "POST",
        inProject(`${poolPath(volume.pool)}/volumes`, volume.project),
        {
          name: volume.name,
          type: "custom",
          content_type: volume.contentType,
          description: volume.description ?? "",
          config: volume.config,
        },
        { what: `creating volume ${volume.name} in pool ${volume.pool}` },
      );
      return;
    }
    case "modify": {
      const volume = action.after;
      // PATCH merges: the keys the file does not give stay as Incus has them.
      await incus.request(
        "PATCH",
        inProject(volumePath(volume.pool, volume.name), volume.project),
        {
          config: volume.config,
          ...(volume.description === undefined ? {} : { description: volume.description }),
        },
        { what: `updating volume ${volume.name} in pool ${volume.pool}` },
      );
      return;
    }
    case "delete": {
      const volume = action.before;
      await incus.request(
        "DELETE",
        inProject(volumePath(volume.pool, volume.name), volume.project),
        undefined,
        { what: `deleting volume ${volume.name} in pool ${volume.pool}` },
      );
      return;
    }
    default:
      return unreachable(action);
  }
}

function poolPath(pool: string): string {
  return `/1.0/storage-pools/${encodeURIComponent(pool)}`;
}

function volumePath(pool: string, name: string): string {
  return `${poolPath(pool)}/volumes/custom/${encodeURIComponent(name)}`;
}
