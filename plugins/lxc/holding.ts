/**
 * What op's Incus objects beyond containers share (projects, profiles): who holds an object
 * the file declares, what is compared of it, what is written back, and what Incus says uses it.
 *
 * An object op created carries `user.op.managed=true` and is `owned`: op compares and writes
 * all of it. One op did not create is changed only when the file says `adopt: true`: then it is
 * `adopted`, and op compares and writes only the keys (and devices) the file names.
 */
import { type Action, describeRef, type FieldChange, type ResourceRef } from "../../src/plugin.js";
import { change, deviceWords, sameDevice, unionKeys } from "./diff.js";
import { containerRef, defaultProject, networkRef, profileRef, volumeRef } from "./refs.js";
import { type Devices, tags } from "./types.js";

export type Holding = "owned" | "adopted";

/** Config values as the file may write them (numbers, booleans) turned into Incus's strings. */
export function configStrings(
  config: Record<string, string | number | boolean | undefined> | undefined,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config ?? {}).flatMap(([key, value]) =>
      value === undefined ? [] : [[key, String(value)]],
    ),
  );
}

/** A device map as the file may write it, with string values. */
export function deviceStrings(
  devices:
    | Record<string, Record<string, string | number | boolean | undefined> | undefined>
    | undefined,
): Devices {
  return Object.fromEntries(
    Object.entries(devices ?? {}).flatMap(([name, device]) =>
      device === undefined ? [] : [[name, configStrings(device)]],
    ),
  );
}

/** Incus's config without the keys it sets for itself (`volatile.*`): those are never drift. */
export function userConfig(
  config: Record<string, string> | null | undefined,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config ?? {}).filter(([key]) => !key.startsWith("volatile.")),
  );
}

export function isManaged(config: Record<string, string>): boolean {
  return config[tags.managed] === "true";
}

/**
 * How op holds an object the file declares, or the problem: one that exists, is not op's and
 * is not adopted is left alone, and the file is refused.
 */
export function holdingOf(
  what: string,
  live: { managed: boolean } | undefined,
  adopt: boolean,
): Holding | { problem: string } {
  if (live === undefined || live.managed) return "owned";
  if (adopt) return "adopted";
  return { problem: `${what} exists and is not op's; set adopt: true` };
}

/** What op writes: an owned object as the file has it, an adopted one with the file's keys over it. */
export function written<T>(
  desired: Record<string, T>,
  live: Record<string, T>,
  holding: Holding,
): Record<string, T> {
  return holding === "owned" ? desired : { ...live, ...desired };
}

/** The config keys that differ (an adopted object's keys the file does not name are not compared). */
export function configChanges(
  desired: Record<string, string>,
  live: Record<string, string>,
  holding: Holding,
): FieldChange[] {
  const keys = holding === "owned" ? unionKeys(desired, live) : Object.keys(desired).sort();
  return keys
    .filter((key) => desired[key] !== live[key])
    .map((key) => change(`config.${key}`, live[key], desired[key]));
}

/** The devices that differ, in the words of a container's (diff.ts deviceWords). */
export function deviceChanges(desired: Devices, live: Devices, holding: Holding): FieldChange[] {
  const names = holding === "owned" ? unionKeys(desired, live) : Object.keys(desired).sort();
  return names.flatMap((name) => {
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

/** The users of an object that this run deletes: its own delete waits for theirs. */
export function deletedUsers(usedBy: readonly string[], planned: readonly Action[]): ResourceRef[] {
  const deletes = planned.filter((a) => a.kind === "delete");
  return usedBy.flatMap((url) => {
    const { ref } = userOf(url);
    return ref !== undefined && deletes.some((a) => sameRef(a, ref)) ? [ref] : [];
  });
}

/** Why an object is deleted, with what it waits for. */
export function deleteReason(why: string, after: readonly ResourceRef[]): string {
  return after.length === 0 ? why : `${why}; after ${after.map(describeRef).join(", ")}`;
}

export function sameRef(a: ResourceRef, b: ResourceRef): boolean {
  return a.plugin === b.plugin && a.resource === b.resource && a.id === b.id;
}

/** The users of an object that this run does not delete: they keep it from being deleted. */
export function remainingUsers(usedBy: readonly string[], planned: readonly Action[]): User[] {
  const deletes = planned.filter((a) => a.kind === "delete");
  return usedBy
    .map(userOf)
    .filter(({ ref }) => ref === undefined || !deletes.some((a) => sameRef(a, ref)));
}
