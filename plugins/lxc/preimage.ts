/**
 * Pre-images for the lxc plugin (src/plugin.ts imageScope, image): each container a run
 * creates or changes, written as op export writes it (config, limits, devices as nics, mounts
 * and volumes, profiles, running state), or `ensure: absent` when the run creates it; an undo
 * is then the plugin's usual apply of that section. A container the run deletes or replaces is
 * refused: its disk would not come back (a snapshot before the delete is not made yet).
 * Projects, profiles, networks, volumes and images keep no pre-image yet, and are refused.
 */
import type { LxcContainerSpec } from "../../src/generated/lxc.js";
import type { ResourceImage } from "../../src/plugin.js";
import { exportLxc } from "./export.js";
import { containerId, defaultProject } from "./refs.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";

/** The containers an undo sets, and what it cannot. */
export interface LxcScope {
  containers: ScopedContainer[];
  /** Other resources the run changes: `profile web`, refused. */
  others: string[];
}

interface ScopedContainer {
  project: string;
  name: string;
  deleted: boolean;
  /** A container the run creates: its file id and the veths it puts on bridges. */
  created?: { id: string; veths: { veth: string; bridge: string }[] };
}

/** Pure: the containers the actions create, change or delete; the other kinds by name. */
export function lxcScope(actions: readonly LxcAction[]): LxcScope {
  const containers = new Map<string, LxcScope["containers"][number]>();
  const others: string[] = [];
  for (const action of actions) {
    if (action.resource !== "container") {
      others.push(`${action.resource} ${action.id}`);
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
    containers.set(action.id, {
      project,
      name,
      deleted: action.kind === "delete" || seen?.deleted === true,
      ...(created === undefined ? {} : { created }),
    });
  }
  return { containers: [...containers.values()], others };
}

/** The scope's containers as `live` has them; absent for those it lacks. */
export function lxcImage(scope: unknown, live: LxcLive): ResourceImage {
  const { containers, others } = scope as LxcScope;
  const refused = others.map((other) => `lxc ${other}: keeps no pre-image yet`);
  const exported = exportLxc(live, { all: true });
  const specs = (exported.section as LxcSection | undefined)?.containers ?? [];
  const byId = new Map(
    specs.map((spec) => [containerId(spec.project ?? defaultProject, nameOf(spec)), spec]),
  );
  const chosen: LxcContainerSpec[] = [];
  for (const { project, name, deleted, created } of containers) {
    const id = containerId(project, name);
    const spec = byId.get(id);
    const where = `container ${id}`;
    if (deleted && spec !== undefined) {
      refused.push(`${where}: the run deletes or replaces it, and its disk would not come back`);
      continue;
    }
    if (spec === undefined) {
      chosen.push(absent(project, name, created));
      continue;
    }
    refused.push(
      ...exported.notes.filter((note) => note.startsWith(`${where}:`) && !restoredAnyway(note)),
    );
    chosen.push(spec);
  }
  if (chosen.length === 0) return { section: undefined, refused };
  // An undo of a remote's containers is applied to that remote, not to the local Incus.
  const remote = live.remoteSpec === undefined ? {} : { remote: live.remoteSpec };
  return { section: { ...remote, containers: chosen }, refused };
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
