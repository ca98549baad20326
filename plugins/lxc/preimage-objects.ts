/**
 * Pre-images of the lxc kinds beside containers (preimage.ts): projects, profiles, managed
 * networks and custom volumes as op export writes them (export.ts), image aliases as the
 * alias alone. What the run creates is written `ensure: absent`; what it changes or deletes,
 * as it was. Refused, with the reason, where the file's form cannot bring the host back:
 * - a volume the run deletes (its content), or whose size it grows (a size only grows);
 * - a key or device the run adds to a network or volume, or to a profile or project op did
 *   not create: op writes only the keys such an entry gives (holding.ts `declared`), so a
 *   file has no way to take one out again;
 * - an image alias the run re-imports or deletes: op imports only from a file's tarballs and
 *   keeps no copy of the image it replaced.
 */
import type { FieldChange } from "../../src/plugin.js";
import { exportLxc } from "./export.js";
import { defaultProject, networkId, profileId, projectId, volumeId } from "./refs.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";

/** The object kinds this file serves. */
export type ObjectResource = "project" | "profile" | "network" | "volume" | "image";

/** One object a run touches, as its actions tell it (JSON: it is stored with the pre-image). */
export interface ScopedObject {
  resource: ObjectResource;
  /** Its action id (refs.ts). */
  id: string;
  /** The run creates it: an undo deletes it. */
  created: boolean;
  /** The run changes its description: an undo writes it back even when it was empty. */
  described: boolean;
  /** What an undo cannot bring back, one line each. */
  refused: string[];
}

/** Pure: the object an action touches, merged with what earlier actions on it said. */
export function scopeObject(
  action: LxcAction & { resource: ObjectResource },
  seen: ScopedObject | undefined,
): ScopedObject {
  // An image's id says `image ALIAS` already (refs.ts).
  const where = action.resource === "image" ? action.id : `${action.resource} ${action.id}`;
  const refused = [
    ...(seen?.refused ?? []),
    ...objectRefusals(action).map((r) => `${where}: ${r}`),
  ];
  const changes: readonly FieldChange[] = action.kind === "modify" ? action.changes : [];
  return {
    resource: action.resource,
    id: action.id,
    // A delete and a create of one id (a replace) leaves it existing before: not created.
    created: (seen?.created ?? true) && action.kind === "create",
    described: seen?.described === true || changes.some((c) => c.path === "description"),
    refused,
  };
}

/** Why an undo of this action cannot bring the object back as it was; none when it can. */
function objectRefusals(action: LxcAction & { resource: ObjectResource }): string[] {
  const { resource, kind } = action;
  if (resource === "image") {
    if (kind === "create") return [];
    return [
      kind === "delete"
        ? "the run deletes it, and op keeps no copy of an image (it imports only from a file's tarballs)"
        : `the run re-imports it, and op keeps no copy of the image it named before (${String((action.before as { fingerprint?: string }).fingerprint ?? "").slice(0, 12)})`,
    ];
  }
  if (kind === "delete")
    return resource === "volume" ? ["the run deletes it, and its content would not come back"] : [];
  if (kind !== "modify") return [];
  // Keys (and devices) an undo could not take out again: see the header.
  const declared =
    resource === "network" ||
    resource === "volume" ||
    (action.after as { holding?: string }).holding === "adopted";
  return action.changes.flatMap((change) => {
    if (resource === "volume" && change.path === "config.size")
      return [
        `the run grows its size from ${String(change.before ?? "unset")} to ${String(change.after)}, and a volume's size only grows`,
      ];
    const added = change.before === undefined && /^(config|devices)\./.test(change.path);
    return declared && added
      ? [
          `the run adds ${change.path.replace(".", " ")}, and op cannot take it out again (it writes only the ${resource === "profile" ? "keys and devices" : "keys"} a file gives to ${resource === "network" || resource === "volume" ? `a ${resource}` : `a ${resource} it did not create`})`,
        ]
      : [];
  });
}

/** The objects' entries of a section, as `live` has them, or absent; with what is refused. */
export function objectsImage(
  objects: readonly ScopedObject[],
  live: LxcLive,
): { section: LxcSection; refused: string[] } {
  const exported = (exportLxc(live, { all: true }).section ?? {}) as LxcSection;
  const found = {
    project: byId(exported.projects, (p) => projectId(p.name)),
    profile: byId(exported.profiles, (p) => profileId(p.project ?? defaultProject, p.name)),
    network: byId(exported.networks, (n) => networkId(n.project ?? defaultProject, n.name)),
    volume: byId(exported.volumes, (v) => volumeId(v.project ?? defaultProject, v.pool, v.name)),
  };
  const section: LxcSection = {};
  const refused: string[] = [];
  for (const object of objects) {
    refused.push(...object.refused);
    if (object.resource === "image") {
      const alias = object.id.replace(/^image /, "");
      // An alias there is left as it is (the run re-imported it: refused above).
      if (live.aliases[alias] === undefined) add(section, "images", { alias, ensure: "absent" });
      continue;
    }
    const spec = found[object.resource].get(object.id);
    if (spec === undefined) {
      if (!isListed(object, live))
        add(section, `${object.resource}s`, absentEntry(object.resource, object.id));
      else refused.push(`${object.resource} ${object.id}: op's format cannot write it`);
      continue;
    }
    add(section, `${object.resource}s`, withDescription(object, spec));
  }
  return { section, refused };
}

function byId<T>(specs: readonly T[] | undefined, id: (spec: T) => string): Map<string, T> {
  return new Map((specs ?? []).map((spec) => [id(spec), spec]));
}

function add(section: LxcSection, key: string, entry: unknown): void {
  const lists = section as Record<string, unknown[]>;
  lists[key] = [...(lists[key] ?? []), entry];
}

/** Whether the host has it although export left it out (a network not of type bridge...). */
function isListed(object: ScopedObject, live: LxcLive): boolean {
  const { resource, id } = object;
  if (resource === "project") return (live.projects ?? []).some((p) => projectId(p.name) === id);
  if (resource === "profile")
    return (live.profiles ?? []).some((p) => !p.inherited && profileId(p.project, p.name) === id);
  if (resource === "network")
    return (live.networks ?? []).some((n) => !n.inherited && networkId(n.project, n.name) === id);
  return (live.volumes ?? []).some(
    (v) => !v.inherited && volumeId(v.project, v.pool, v.name) === id,
  );
}

/**
 * The entry that deletes an object the run created, from its id (refs.ts: Incus names hold no
 * `/`, so the id's parts are its project, pool and name).
 */
function absentEntry(resource: Exclude<ObjectResource, "image">, id: string): object {
  const parts = id.split("/");
  if (resource === "project") return { name: id, ensure: "absent" };
  const name = parts.pop() as string;
  const pool = resource === "volume" ? (parts.pop() as string) : undefined;
  const [project] = parts;
  return {
    ...(pool === undefined ? {} : { pool }),
    name,
    ...(project === undefined ? {} : { project }),
    ensure: "absent",
  };
}

/** Export leaves out an empty description; an undo of a run that set one must write it. */
function withDescription<T extends { description?: string }>(object: ScopedObject, spec: T): T {
  if (!object.described || spec.description !== undefined) return spec;
  if (object.resource === "project" && object.id === defaultProject) return spec;
  return { ...spec, description: "" };
}
