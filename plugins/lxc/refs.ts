/**
 * The ids of the lxc plugin's resources and the refs other actions name them by (src/plugin.ts).
 * Only these functions spell an lxc id, so the kinds agree on them and no other plugin does.
 *
 * An object in Incus's `default` project keeps its plain name as id (`ct100`, the ids the
 * ledger has always recorded); one in another project is `PROJECT/NAME`. Incus names hold no
 * `/` and no space, so no two of these can be the same string:
 *   container  NAME | PROJECT/NAME
 *   profile    NAME | PROJECT/NAME
 *   network    NAME | PROJECT/NAME
 *   volume     POOL/NAME | PROJECT/POOL/NAME
 *   project    NAME
 *   image      `image ALIAS`, or `image sha256:FINGERPRINT` for one with no alias (no alias has `:`)
 */
import { withProject } from "../../src/incus.js";
import type { ResourceRef } from "../../src/plugin.js";
import { plugin } from "./types.js";

export const defaultProject = "default";

/** NAME in the default project, PROJECT/NAME elsewhere. */
export function scopedId(project: string, name: string): string {
  return project === defaultProject ? name : `${project}/${name}`;
}

/**
 * A path of Incus's API, scoped to `project` (the default project needs no parameter, so a
 * client bound to a project scopes it to its own; src/incus.ts adds no second one).
 */
export function inProject(path: string, project: string): string {
  return project === defaultProject ? path : withProject(path, project);
}

export function containerId(project: string, name: string): string {
  return scopedId(project, name);
}
export function containerRef(project: string, name: string): ResourceRef {
  return { plugin, resource: "container", id: containerId(project, name) };
}

export function projectId(name: string): string {
  return name;
}
export function projectRef(name: string): ResourceRef {
  return { plugin, resource: "project", id: projectId(name) };
}

export function profileId(project: string, name: string): string {
  return scopedId(project, name);
}
export function profileRef(project: string, name: string): ResourceRef {
  return { plugin, resource: "profile", id: profileId(project, name) };
}

export function networkId(project: string, name: string): string {
  return scopedId(project, name);
}
export function networkRef(project: string, name: string): ResourceRef {
  return { plugin, resource: "network", id: networkId(project, name) };
}

export function volumeId(project: string, pool: string, name: string): string {
  return scopedId(project, `${pool}/${name}`);
}
export function volumeRef(project: string, pool: string, name: string): ResourceRef {
  return { plugin, resource: "volume", id: volumeId(project, pool, name) };
}

/** An image alias's action id; readable, and never another kind's (Incus names have no space). */
export function imageActionId(alias: string): string {
  return `image ${alias}`;
}
/** The image alias `alias`, as a container's create names it in `needs`. */
export function imageRef(alias: string): ResourceRef {
  return { plugin, resource: "image", id: imageActionId(alias) };
}

/** An image op prunes that has no alias: named by its fingerprint. */
export function imageFingerprintId(fingerprint: string): string {
  return `image sha256:${fingerprint}`;
}
