/**
 * The host's side of the Incus object kinds beside containers (networks, volumes, profiles,
 * projects): how their listings read, as a client of the whole host or of one project sees
 * them, and what Incus says uses each (`used_by`). The file's side, who holds an object and
 * what is compared and written, is plugins/lxc/holding.ts.
 */
import type { IncusClient } from "../../src/incus.js";
import { type Action, describeRef, type ResourceRef } from "../../src/plugin.js";
import { containerRef, defaultProject, networkRef, profileRef, volumeRef } from "./refs.js";
import { tags } from "./types.js";

/** Where prepare and check collect problems, each at a JSON path. */
export interface ProblemSink {
  add(path: string, message: string): void;
}

/**
 * The listing parameter for every project; none for a client scoped to one project, which
 * Incus would refuse it for (such a client sees only its project).
 */
export function everyProject(incus: IncusClient): string {
  return incus.project === undefined ? "&all-projects=true" : "";
}

/**
 * Listed objects as the file sees them. A client bound to one project (the system tests'
 * isolation, test/support/lxc.ts) sees that project as `default`, as it does its containers
 * (plugins/lxc/query.ts). A project without networks, profiles or volumes of its own lists the
 * real default project's instead, each with `project: "default"`: those are `inherited`, kept
 * visible (a container of the project may use them) but never the file's to prune or delete.
 */
export function asListed<T extends { project?: string }>(
  incus: IncusClient,
  listed: readonly T[],
): (T & { project: string; inherited?: true })[] {
  const bound = incus.project;
  return listed.map((object) => {
    const project = object.project ?? bound ?? defaultProject;
    if (bound === undefined) return { ...object, project };
    return project === bound
      ? { ...object, project: defaultProject }
      : { ...object, project: defaultProject, inherited: true };
  });
}

/** Why the file may not change or delete an inherited object (asListed). */
export function inheritedProblem(what: string): string {
  return `${what} is the default project's, listed here only because the project this client is bound to has none of its own; op neither changes nor deletes it from this project`;
}

/** What Incus lists of every network, volume, profile and project. */
export interface IncusObject {
  description: string;
  config: Record<string, string> | null;
  used_by: string[] | null;
}

/** Incus's config without the keys it sets for itself (`volatile.*`): those are never drift. */
export function userConfig(
  config: Record<string, string> | null | undefined,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config ?? {}).filter(([key]) => !key.startsWith("volatile.")),
  );
}

/** The `volatile.*` keys Incus sets for itself, kept apart for `op query --all`. */
export function volatileConfig(
  config: Record<string, string> | null | undefined,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config ?? {}).filter(([key]) => key.startsWith("volatile.")),
  );
}

/** The fields of a listed object op reads, whatever its kind. */
export interface LiveFields {
  /** Tagged `user.op.managed=true`: op created it. */
  managed: boolean;
  description: string;
  /** Without Incus's own `volatile.*` keys. */
  config: Record<string, string>;
  /** What uses it, as Incus lists it (`/1.0/instances/ct1?project=p`, `/1.0/profiles/x`). */
  usedBy: string[];
}

/** A listed network, volume or profile: its fields and its project, as asListed gives it. */
export interface LiveObject extends LiveFields {
  project: string;
  /**
   * Listed by a client bound to one project but another project's (a project without its own
   * lists the default project's; asListed): visible, never changed or deleted.
   */
  inherited?: true;
}

/** A listed object (after asListed) as op reads it: with its project, `default` when absent. */
export function liveObject(
  object: IncusObject & { project?: string; inherited?: true },
): LiveObject {
  return {
    project: object.project ?? defaultProject,
    ...liveFields(object),
    ...(object.inherited ? { inherited: true } : {}),
  };
}

export function liveFields(object: IncusObject): LiveFields {
  const config = userConfig(object.config);
  return {
    managed: config[tags.managed] === "true",
    description: object.description,
    config,
    usedBy: object.used_by ?? [],
  };
}

/** One entry of an Incus `used_by` list: what it is, in words, and its ref when op has one. */
export interface User {
  words: string;
  ref?: ResourceRef;
}

/**
 * `/1.0/instances/ct1?project=p` → instance ct1 (project p), with the ref of op's kind for it
 * (container, profile, network, custom volume); any other kind in words only.
 */
export function userOf(url: string): User {
  const parsed = new URL(url, "http://incus");
  const project = parsed.searchParams.get("project") ?? defaultProject;
  const [collection = "object", name = "", ...rest] = parsed.pathname
    .split("/")
    .slice(2)
    .map(decodeURIComponent);
  const words = (what: string) =>
    project === defaultProject ? what : `${what} (project ${project})`;
  switch (collection) {
    case "instances":
      return { words: words(`instance ${name}`), ref: containerRef(project, name) };
    case "profiles":
      return { words: words(`profile ${name}`), ref: profileRef(project, name) };
    case "networks":
      return { words: words(`network ${name}`), ref: networkRef(project, name) };
    case "storage-pools": {
      // /1.0/storage-pools/POOL/volumes/TYPE/NAME
      const [, type, volume = ""] = rest;
      return {
        words: words(`${type ?? ""} volume ${name}/${volume}`),
        ...(type === "custom" ? { ref: volumeRef(project, name, volume) } : {}),
      };
    }
    default:
      return { words: words(`${collection.replace(/s$/, "")} ${[name, ...rest].join("/")}`) };
  }
}

/** Whether this run deletes the object `ref` names. */
export type Leaves = (ref: ResourceRef) => boolean;

/** What the planned actions delete. */
export function deletedIn(planned: readonly Action[]): Leaves {
  const deletes = planned.filter((a) => a.kind === "delete");
  return (ref) => deletes.some((a) => sameRef(a, ref));
}

/**
 * What prepare knows a run deletes before its plan exists: containers and profiles by id
 * (a profile can be deleted in the same run as the network or volume it uses).
 */
export function leavingIds(ids: {
  containers: ReadonlySet<string>;
  profiles: ReadonlySet<string>;
}): Leaves {
  return (ref) =>
    (ref.resource === "container" && ids.containers.has(ref.id)) ||
    (ref.resource === "profile" && ids.profiles.has(ref.id));
}

/** The users of an object that this run deletes: its own delete waits for theirs. */
export function usersLeaving(usedBy: readonly string[], leaves: Leaves): ResourceRef[] {
  return usedBy.flatMap((url) => {
    const { ref } = userOf(url);
    return ref !== undefined && leaves(ref) ? [ref] : [];
  });
}

/** The users of an object that are still there after this run: they keep it from being deleted. */
export function usersThatStay(usedBy: readonly string[], leaves: Leaves): User[] {
  return usedBy.map(userOf).filter(({ ref }) => ref === undefined || !leaves(ref));
}

/** The users in words, for a message or a table: `instance ct1, profile small (project p)`. */
export function usersWords(users: readonly User[]): string {
  return users.map((user) => user.words).join(", ");
}

/** Why an object is deleted, with what it waits for. */
export function deleteReason(why: string, after: readonly ResourceRef[]): string {
  return after.length === 0 ? why : `${why}; after ${after.map(describeRef).join(", ")}`;
}

export function sameRef(a: ResourceRef, b: ResourceRef): boolean {
  return a.plugin === b.plugin && a.resource === b.resource && a.id === b.id;
}
