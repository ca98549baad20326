/**
 * `mounts[].uid` / `gid`: the owner op gives a mount's host directory. Incus has no per-mount
 * owner for a host directory, and `raw.idmap` would also need the host's subordinate id ranges
 * changed; a chown of the directory is the simplest thing that makes it writable from inside.
 * With `shift` (an idmapped mount) uid N inside is uid N on the host; without, an unprivileged
 * container's uid N is the host's N plus its idmap base. Only the directory itself is changed,
 * never what is inside it. The query reads the directory's owner, so one chowned by hand
 * shows as a change and is put back.
 */
import { statSync } from "node:fs";
import { chown } from "node:fs/promises";
import type { FieldChange } from "../../../src/plugin.js";
import type { DesiredContainer, DesiredMount, LiveContainer, LxcMount } from "../types.js";

export interface MountOwner {
  uid?: number;
  gid?: number;
}

export function ownerOf(mount: LxcMount): { owner?: MountOwner } {
  if (mount.uid === undefined && mount.gid === undefined) return {};
  return {
    owner: {
      ...(mount.uid === undefined ? {} : { uid: mount.uid }),
      ...(mount.gid === undefined ? {} : { gid: mount.gid }),
    },
  };
}

/**
 * Gives `live` an `owners` property: the owner of each host directory its disk devices mount,
 * read when first looked at (a plan over containers without `uid`/`gid` reads none).
 */
export function defineOwners(live: LiveContainer): void {
  Object.defineProperty(live, "owners", {
    enumerable: false,
    configurable: true,
    get: () => {
      const owners: Record<string, { uid: number; gid: number }> = {};
      for (const [device, spec] of Object.entries(live.devices)) {
        if (spec.type !== "disk" || spec.pool !== undefined || !spec.source?.startsWith("/"))
          continue;
        try {
          const { uid, gid } = statSync(spec.source);
          owners[device] = { uid, gid };
        } catch {
          // Gone: the mount's own check reports it.
        }
      }
      Object.defineProperty(live, "owners", { value: owners, enumerable: false });
      return owners;
    },
  });
}

/** The change entry path of a mount's owner. */
const ownerPath = (mount: DesiredMount) => `owner.${mount.device}`;

const words = (uid: number | undefined, gid: number | undefined) =>
  `${uid ?? "(kept)"}:${gid ?? "(kept)"}`;

/** Mounts whose host directory has another owner than the file gives (or is not mounted yet). */
export function ownerChanges(desired: DesiredContainer, live: LiveContainer): FieldChange[] {
  return desired.mounts.flatMap((mount) => {
    const { owner } = mount;
    if (owner === undefined) return [];
    const now = live.owners?.[mount.device];
    const same =
      now !== undefined &&
      (owner.uid === undefined || owner.uid === now.uid) &&
      (owner.gid === undefined || owner.gid === now.gid);
    if (same) return [];
    return [
      {
        path: ownerPath(mount),
        ...(now === undefined ? {} : { before: words(now.uid, now.gid) }),
        after: words(owner.uid, owner.gid),
      },
    ];
  });
}

export function describeOwner(change: FieldChange): string | undefined {
  if (!change.path.startsWith("owner.")) return undefined;
  return `chown the host directory of ${change.path.slice(6)} ${change.before ?? "(not mounted yet)"} → ${change.after}`;
}

/** Gives the mounts' host directories their owners: all at create, the changed ones after. */
export async function applyOwners(
  container: DesiredContainer,
  changes?: readonly FieldChange[],
): Promise<void> {
  for (const mount of container.mounts) {
    const { owner } = mount;
    if (owner === undefined) continue;
    if (changes !== undefined && !changes.some((change) => change.path === ownerPath(mount)))
      continue;
    // -1 leaves that id as it is.
    await chown(mount.source, owner.uid ?? -1, owner.gid ?? -1);
  }
}
