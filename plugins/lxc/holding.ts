/**
 * The file's side of the Incus object kinds beside containers (networks, volumes, profiles,
 * projects): the config an entry asks for, how op holds the object, and what is compared and
 * written. The host's side, listings and `used_by`, is plugins/lxc/objects.ts.
 *
 * An object op created carries `user.op.managed=true` and is `owned`. One op did not create is
 * `adopted`: op compares and writes only the keys (and devices) the file names and never tags
 * it, and each change to it (or its delete) is an adoption the engine lets through only when
 * the entry says `adopt: true` or the run has `--adopt` (src/plugin.ts Adoption).
 */
import type { Adoption, FieldChange, ResourceRef } from "../../src/plugin.js";
import { change, deviceWords, sameDevice, unionKeys } from "./diff.js";
import type { ProblemSink } from "./objects.js";
import { type Devices, type LxcAction, type LxcKinds, plugin, tags } from "./types.js";

export type Holding = "owned" | "adopted";

/** How op holds an object the file declares: owned once op creates it, adopted if it exists and is not op's. */
export function holdingOf(live: { managed: boolean } | undefined): Holding {
  return live === undefined || live.managed ? "owned" : "adopted";
}

/**
 * The adoption an action on a live object op did not create carries (none for op's own): the
 * entry's JSON path and whether it says `adopt: true`.
 */
export function adoptionOf(
  entry: { path: string; adopt?: boolean | undefined },
  live: { managed: boolean },
): { adopt?: Adoption } {
  return live.managed ? {} : { adopt: { path: entry.path, allowed: entry.adopt === true } };
}

/** Config values as the file may write them (numbers, booleans) turned into Incus's strings. */
export function configStrings(config: Record<string, unknown> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config ?? {}).flatMap(([key, value]) =>
      value === undefined ? [] : [[key, String(value)]],
    ),
  );
}

/** A device map as the file may write it, with string values. */
export function deviceStrings(
  devices: Record<string, Record<string, unknown> | undefined> | undefined,
): Devices {
  return Object.fromEntries(
    Object.entries(devices ?? {}).flatMap(([name, device]) =>
      device === undefined ? [] : [[name, configStrings(device)]],
    ),
  );
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
 * An entry's config (configOf) with op's ownership tag added, for when op creates the object
 * (the diff leaves the tag out of a change to one op did not create); the file itself may not
 * set op's tags.
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
  config[tags.managed] = "true";
  return { config, paths, adopt: spec.adopt ?? false };
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
  const config = configStrings(raw);
  const paths = Object.fromEntries(
    Object.keys(config).map((key) => [key, `${path}/config/${key}`]),
  );
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
 * Which keys (and devices) of an object are compared with the live ones: `all` of them, or
 * only those the file `declared`. The rule differs by kind and holding, so it is the caller's:
 * - an owned profile or project is all op's (it writes the whole of it), so a key added by
 *   hand is drift: `all` (the feature keys Incus gives a new project are in its desired
 *   config, plugins/lxc/projects/prepare.ts);
 * - an adopted object is someone else's: only the keys the file names are op's, `declared`;
 * - networks and volumes: Incus fills in keys the file leaves out when it creates them (a
 *   network's `ipv4.address`, `ipv4.nat`, `ipv6.address`), which would be drift on every run:
 *   `declared`, owned or not.
 */
export type Compared = "all" | "declared";

/** The rule for a profile or project: everything of an owned one, the named keys of an adopted one. */
export function comparedFor(holding: Holding): Compared {
  return holding === "owned" ? "all" : "declared";
}

function comparedKeys(desired: object, live: object, compared: Compared): string[] {
  return compared === "all" ? unionKeys(desired, live) : Object.keys(desired).sort();
}

/** The config keys that differ, under the kind's rule (Compared). */
export function configChanges(
  desired: Record<string, string>,
  live: Record<string, string>,
  compared: Compared,
): FieldChange[] {
  return comparedKeys(desired, live, compared)
    .filter((key) => desired[key] !== live[key])
    .map((key) => change(`config.${key}`, live[key], desired[key]));
}

/** The devices that differ, in the words of a container's (diff.ts deviceWords). */
export function deviceChanges(desired: Devices, live: Devices, compared: Compared): FieldChange[] {
  return comparedKeys(desired, live, compared).flatMap((name) => {
    const before = live[name];
    const after = desired[name];
    if (sameDevice(before, after)) return [];
    return [
      change(
        `devices.${name}`,
        before === undefined ? undefined : deviceWords(before),
        after === undefined ? undefined : deviceWords(after),
      ),
    ];
  });
}

/** A description that differs; undefined in the file means leave it. */
export function descriptionChanges(desired: string | undefined, live: string): FieldChange[] {
  return desired === undefined || desired === live ? [] : [change("description", live, desired)];
}

/** What op writes: an owned object as the file has it, an adopted one with the file's keys over it. */
export function written<T>(
  desired: Record<string, T>,
  live: Record<string, T>,
  holding: Holding,
): Record<string, T> {
  return holding === "owned" ? desired : { ...live, ...desired };
}

/** The kinds this module serves. */
export type ObjectKind = "network" | "volume" | "profile" | "project";

/**
 * The modify of an object whose compared fields differ, its reason in `words`; none when none
 * do. `adoption`: adoptionOf the entry, for an object op did not create.
 */
export function modifyOf<R extends ObjectKind>(
  resource: R,
  id: string,
  before: LxcKinds[R]["modify"]["before"],
  after: LxcKinds[R]["modify"]["after"],
  changes: FieldChange[],
  words: (change: FieldChange) => string,
  adoption: { adopt?: Adoption } = {},
): LxcAction[] {
  if (changes.length === 0) return [];
  const reason = changes.map(words).join(", ");
  return [
    {
      kind: "modify",
      plugin,
      resource,
      id,
      before,
      after,
      changes,
      reason,
      ...adoption,
    } as LxcAction,
  ];
}

/**
 * The modify of a network or volume whose declared keys differ (Compared says why). One op did
 * not create keeps its owner: op's tag is not written to it.
 */
export function declaredModify<R extends "network" | "volume">(
  resource: R,
  id: string,
  before: LxcKinds[R]["modify"]["before"],
  desired: LxcKinds[R]["modify"]["after"],
): LxcAction[] {
  const { [tags.managed]: _tag, ...theirs } = desired.config;
  const after = before.managed ? desired : { ...desired, config: theirs };
  const changes = [
    ...configChanges(after.config, before.config, "declared"),
    ...descriptionChanges(after.description, before.description),
  ];
  return modifyOf(resource, id, before, after, changes, changeWords, adoptionOf(after, before));
}

/**
 * The delete of an object; `needs`: the deletes of its users in the same run, done first;
 * `adoption`: adoptionOf the entry, for an object op did not create.
 */
export function deleteOf<R extends ObjectKind>(
  resource: R,
  id: string,
  before: LxcKinds[R]["delete"],
  reason: string,
  needs: readonly ResourceRef[],
  adoption: { adopt?: Adoption } = {},
): LxcAction {
  return {
    kind: "delete",
    plugin,
    resource,
    id,
    before,
    reason,
    ...(needs.length > 0 ? { needs: [...needs] } : {}),
    ...adoption,
  } as LxcAction;
}

/** A network's or volume's change in a person's words: `ipv4.dhcp false → true`. */
export function changeWords(change: FieldChange): string {
  const key = change.path.replace(/^config\./, "");
  return change.before === undefined
    ? `set ${key} ${String(change.after)}`
    : `${key} ${String(change.before)} → ${String(change.after)}`;
}
