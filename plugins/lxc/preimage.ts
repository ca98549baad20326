/**
 * Pre-images for the lxc plugin (src/plugin.ts imageScope, image): each container a run
 * creates or changes, written as op export writes it (config, limits, devices as nics, mounts
 * and volumes, profiles, running state), or `ensure: absent` when the run creates it; an undo
 * is then the plugin's usual apply of that section. A container the run deletes or replaces is
 * refused (its disk would not come back) unless its entry says `rollback: snapshot`: then it is
 * backed up first and written with that `backup` (backup.ts), which the undo imports.
 * Projects, profiles, networks, volumes and image aliases: preimage-objects.ts.
 */
import type { LxcContainerSpec } from "../../src/generated/lxc.js";
import type { Ctx, ImageKeep, ResourceImage } from "../../src/plugin.js";
import { keepBackup } from "./backup.js";
import { exportLxc } from "./export.js";
import {
  type ObjectResource,
  objectsImage,
  type ScopedObject,
  scopeObject,
} from "./preimage-objects.js";
import { incusOf } from "./query.js";
import { containerId, defaultProject, inProject } from "./refs.js";
import { runIncus } from "./remote.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";

/** The containers an undo sets, and what it cannot. */
export interface LxcScope {
  containers: ScopedContainer[];
  /** The other kinds' objects the run creates, changes or deletes. */
  objects: ScopedObject[];
}

interface ScopedContainer {
  project: string;
  name: string;
  deleted: boolean;
  /** Its delete's entry says `rollback: snapshot`: a backup is kept first (backup.ts). */
  snapshot?: true;
  /** A container the run creates: its file id and the veths it puts on bridges. */
  created?: { id: string; veths: { veth: string; bridge: string }[] };
}

/** Pure: the containers and other objects the actions create, change or delete. */
export function lxcScope(actions: readonly LxcAction[]): LxcScope {
  const containers = new Map<string, LxcScope["containers"][number]>();
  const objects = new Map<string, ScopedObject>();
  for (const action of actions) {
    if (action.resource !== "container") {
      const key = `${action.resource} ${action.id}`;
      const object = action as LxcAction & { resource: ObjectResource };
      objects.set(key, scopeObject(object, objects.get(key)));
      continue;
    }
    const { project, name } =
      action.kind === "delete"
        ? action.before.container
        : action.kind === "modify"
          ? action.before
          : action.after;
    const seen = containers.get(action.id);
    const created =
      action.kind === "create"
        ? {
            id: action.after.id,
            veths: (action.after.nics ?? []).map(({ veth, bridge }) => ({ veth, bridge })),
          }
        : undefined;
    // A replace is a delete and a create of one id: its disk goes all the same.
    const snapshot =
      seen?.snapshot === true || (action.kind === "delete" && action.before.snapshot);
    containers.set(action.id, {
      project,
      name,
      deleted: action.kind === "delete" || seen?.deleted === true,
      ...(snapshot ? { snapshot: true as const } : {}),
      ...(created === undefined ? {} : { created }),
    });
  }
  return { containers: [...containers.values()], objects: [...objects.values()] };
}

/**
 * The scope's containers as `live` has them; absent for those it lacks. One the run deletes
 * or replaces is backed up into `keep` (the pre-image's) when its entry says `rollback:
 * snapshot`, and written with that `backup`; refused otherwise.
 */
export async function lxcImage(
  scope: unknown,
  live: LxcLive,
  ctx: Ctx,
  keep?: ImageKeep,
): Promise<ResourceImage> {
  const { containers, objects } = scope as LxcScope;
  const { section, refused } = objectsImage(objects, live);
  const exported = exportLxc(live, { all: true });
  const specs = (exported.section as LxcSection | undefined)?.containers ?? [];
  const byId = new Map(
    specs.map((spec) => [containerId(spec.project ?? defaultProject, nameOf(spec)), spec]),
  );
  const chosen: LxcContainerSpec[] = [];
  for (const { project, name, deleted, snapshot, created } of containers) {
    const id = containerId(project, name);
    const spec = byId.get(id);
    const where = `container ${id}`;
    if (deleted && spec !== undefined && snapshot !== true) {
      refused.push(
        `${where}: the run deletes or replaces it, and its disk would not come back (its entry can say "rollback": "snapshot")`,
      );
      continue;
    }
    if (spec === undefined) {
      chosen.push(absent(project, name, created));
      continue;
    }
    refused.push(
      ...exported.notes.filter((note) => note.startsWith(`${where}:`) && !restoredAnyway(note)),
    );
    // Only the pre-image keeps a backup (a post-image describes what the run left).
    const backup =
      deleted && keep !== undefined
        ? await keepBackup(incusOf(ctx), { project, name }, keep)
        : undefined;
    chosen.push(backup === undefined ? spec : { ...spec, backup });
  }
  if (chosen.length > 0) section.containers = chosen;
  // An undo of a remote's objects is applied to that remote, not to the local Incus.
  if (Object.keys(section).length > 0 && live.remoteSpec !== undefined)
    section.remote = live.remoteSpec;
  return {
    section: Object.keys(section).length === 0 ? undefined : section,
    refused,
    ...(await etags(containers, byId, ctx)),
  };
}

/**
 * Incus's ETag of each scoped container the host has (`container ID ETag`): an undo is refused
 * when one differs from the post-image's, a change by hand since that the section may not show
 * (a root disk's size, a key op does not export). Incus's ETag covers the volatile keys too,
 * so a start or stop since changes it as well. None without an Incus client (unit tests).
 */
async function etags(
  containers: readonly ScopedContainer[],
  present: ReadonlyMap<string, unknown>,
  ctx: Ctx,
): Promise<{ marks?: Record<string, string> }> {
  const incus = runIncus(ctx);
  if (incus === undefined) return {};
  const marks: Record<string, string> = {};
  for (const { project, name } of containers) {
    const id = containerId(project, name);
    if (!present.has(id)) continue;
    const path = inProject(`/1.0/instances/${encodeURIComponent(name)}`, project);
    const etag = await incus.etag(path, { what: `reading the ETag of container ${id}` });
    if (etag !== undefined) marks[`container ${id} ETag`] = etag;
  }
  return Object.keys(marks).length === 0 ? {} : { marks };
}

/**
 * A container to delete. One the run created is written with its id and bridged NICs, so that
 * the network plugin takes its veths as the container's until it is gone (lxc/veths.ts).
 */
function absent(
  project: string,
  name: string,
  created: ScopedContainer["created"],
): LxcContainerSpec {
  const numeric = created !== undefined && /^[0-9]{1,9}$/.test(created.id);
  const nics = (created?.veths ?? []).map(({ veth, bridge }) => ({
    type: "bridged" as const,
    bridge,
    host_name: veth,
  }));
  return {
    id: numeric ? Number(created?.id) : (created?.id ?? name),
    name,
    ...(project === defaultProject ? {} : { project }),
    ensure: "absent",
    ...(nics.length === 0 ? {} : { nics }),
  };
}

/** The container's name as a spec gives it (export.ts idOf: a number names it `ct{id}`). */
function nameOf(spec: LxcContainerSpec): string {
  if (spec.name !== undefined) return spec.name;
  return typeof spec.id === "number" ? `ct${spec.id}` : spec.id;
}

/**
 * Export notes that do not stop an undo of a container that stays: its image matters only to
 * create it, and one op did not create is op's once the run adopted it.
 */
function restoredAnyway(note: string): boolean {
  return /the image it came from is not known|op did not create it; op takes it over/.test(note);
}
