/**
 * What the Incus objects beside containers (managed networks, custom volumes) share: a config
 * built from typed fields and raw keys that must agree, the server's own keys kept apart,
 * the keys the file gives compared with the live ones, and `used_by` read as instances.
 */
import type { IncusClient } from "../../src/incus.js";
import type { FieldChange } from "../../src/plugin.js";
import { containerId, defaultProject, profileId } from "./refs.js";
import { type LxcAction, type LxcKinds, plugin, tags } from "./types.js";

export interface ProblemSink {
  add(path: string, message: string): void;
}

/** A typed field that sets an Incus key: its key, its JSON path, and its value (if given). */
export type TypedKey = [key: string, path: string, value: string | boolean | undefined];

/**
 * Whether `id` is declared here first; a second declaration is a problem at `path`/name.
 * `seen` maps the ids declared so far to their JSON paths.
 */
export function declaredFirst(
  seen: Map<string, string>,
  id: string,
  path: string,
  what: string,
  problems: ProblemSink,
): boolean {
  const first = seen.get(id);
  if (first !== undefined) {
    problems.add(`${path}/name`, `${what} "${id}" is also declared by ${first}`);
    return false;
  }
  seen.set(id, path);
  return true;
}

/**
 * An entry's config (configOf) with op's ownership tag added unless the entry adopts an
 * object op did not create; the file itself may not set op's tags.
 */
export function ownedConfig(
  spec: { config?: Record<string, unknown>; adopt?: boolean },
  path: string,
  typed: readonly TypedKey[],
  problems: ProblemSink,
): { config: Record<string, string>; paths: Record<string, string>; adopt: boolean } {
  for (const key of Object.keys(spec.config ?? {})) {
    if (key.startsWith("user.op.")) {
      problems.add(
        `${path}/config/${key}`,
        `${key} is op's own ownership tag; op sets it on what it creates, the file cannot`,
      );
    }
  }
  const { config, paths } = configOf(spec.config, path, typed, problems);
  const adopt = spec.adopt ?? false;
  if (!adopt) config[tags.managed] = "true";
  return { config, paths, adopt };
}

/**
 * The config an object's entry asks for: its raw `config` keys, and each typed field's key. A
 * key given both ways with different values is a problem naming both JSON paths. `paths`
 * gives each key's JSON path (the typed field's when both say it).
 */
export function configOf(
  raw: Record<string, unknown> | undefined,
  path: string,
  typed: readonly TypedKey[],
  problems: ProblemSink,
): { config: Record<string, string>; paths: Record<string, string> } {
  const config: Record<string, string> = {};
  const paths: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (value === undefined) continue;
    config[key] = String(value);
    paths[key] = `${path}/config/${key}`;
  }
  for (const [key, at, value] of typed) {
    if (value === undefined) continue;
    const text = String(value);
    const given = config[key];
    if (given !== undefined && given !== text) {
      problems.add(
        at,
        `${key} is given twice with different values: ${at} = ${JSON.stringify(value)}, ${path}/config/${key} = ${JSON.stringify(given)}`,
      );
    }
    config[key] = text;
    paths[key] = at;
  }
  return { config, paths };
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

/** What Incus lists of every network and volume. */
export interface IncusObject {
  description: string;
  config: Record<string, string> | null;
  used_by: string[] | null;
}

/** The fields of a listed object op reads: its config without the keys Incus sets for itself. */
export function liveFields(object: IncusObject): {
  owned: boolean;
  description: string;
  config: Record<string, string>;
  volatile: Record<string, string>;
  usedBy: string[];
} {
  const config: Record<string, string> = {};
  const volatile: Record<string, string> = {};
  for (const [key, value] of Object.entries(object.config ?? {})) {
    if (key.startsWith("volatile.")) volatile[key] = value;
    else config[key] = value;
  }
  return {
    owned: config[tags.managed] === "true",
    description: object.description,
    config,
    volatile,
    usedBy: object.used_by ?? [],
  };
}

/**
 * The keys the file gives that differ on the host, and the description if the file gives one.
 * Keys the file leaves out are Incus's (it fills in defaults such as `ipv4.nat`): not compared.
 */
export function declaredChanges(
  desired: { config: Record<string, string>; description?: string },
  live: { config: Record<string, string>; description: string },
): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const key of Object.keys(desired.config).sort()) {
    const before = live.config[key];
    const after = desired.config[key];
    if (before !== after) {
      changes.push({ path: `config.${key}`, ...(before === undefined ? {} : { before }), after });
    }
  }
  if (desired.description !== undefined && desired.description !== live.description) {
    changes.push({ path: "description", before: live.description, after: desired.description });
  }
  return changes;
}

/** The modify of a network or volume whose declared keys differ; undefined when none do. */
export function declaredModify<R extends "network" | "volume">(
  resource: R,
  id: string,
  before: LxcKinds[R]["modify"]["before"],
  after: LxcKinds[R]["modify"]["after"],
): LxcAction | undefined {
  const changes = declaredChanges(after, before);
  if (changes.length === 0) return undefined;
  return {
    kind: "modify",
    plugin,
    resource,
    id,
    before,
    after,
    changes,
    reason: changes.map(changeWords).join(", "),
  } as LxcAction;
}

/** A change in a person's words: `ipv4.dhcp false → true`. */
export function changeWords(change: FieldChange): string {
  const key = change.path.replace(/^config\./, "");
  return change.before === undefined
    ? `set ${key} ${String(change.after)}`
    : `${key} ${String(change.before)} → ${String(change.after)}`;
}

export interface UsedBy {
  /** `instance` or `profile` (other users, such as another network, are `other`). */
  kind: "instance" | "profile" | "other";
  project: string;
  name: string;
}

/** One `used_by` URL (`/1.0/instances/ct1?project=p`) as what it names. */
export function usedByOf(url: string): UsedBy {
  const parsed = new URL(url, "http://incus");
  const parts = parsed.pathname.split("/").filter(Boolean);
  const project = parsed.searchParams.get("project") ?? defaultProject;
  const name = decodeURIComponent(parts[2] ?? url);
  if (parts[1] === "instances") return { kind: "instance", project, name };
  if (parts[1] === "profiles") return { kind: "profile", project, name };
  return { kind: "other", project, name: parts.slice(1).join("/") || url };
}

/** What this run deletes that may use a network or volume: containers and profiles, by id. */
export interface Leaving {
  containers: ReadonlySet<string>;
  profiles: ReadonlySet<string>;
}

/**
 * The users of an object that are still there after this run: `leaving` says which instances
 * (by container id) and which profiles (by profile id) this run deletes; a profile can be
 * deleted in the same run (ensure: absent, prune). Other users always stay.
 */
export function usersThatStay(usedBy: readonly string[], leaving: Leaving): UsedBy[] {
  return usedBy.map(usedByOf).filter((user) => {
    if (user.kind === "instance")
      return !leaving.containers.has(containerId(user.project, user.name));
    if (user.kind === "profile") return !leaving.profiles.has(profileId(user.project, user.name));
    return true;
  });
}

/** `container ct1`, `profile default`, with the project when it is not `default`. */
export function usedByWords(user: UsedBy): string {
  const what = user.kind === "instance" ? "container" : user.kind === "profile" ? "profile" : "";
  const where = user.project === defaultProject ? "" : ` (project ${user.project})`;
  return `${what === "" ? "" : `${what} `}${user.name}${where}`;
}
