/**
 * What the Incus objects beside containers (managed networks, custom volumes) share: a config
 * built from typed fields and raw keys that must agree, the server's own keys kept apart,
 * the keys the file gives compared with the live ones, and `used_by` read as instances.
 */
import type { FieldChange } from "../../src/plugin.js";
import { defaultProject } from "./refs.js";

export interface ProblemSink {
  add(path: string, message: string): void;
}

/** A typed field that sets an Incus key: its key, its JSON path, and its value (if given). */
export type TypedKey = [key: string, path: string, value: string | boolean | undefined];

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

/** An object's config as Incus lists it, without the keys Incus sets for itself. */
export function splitServerKeys(config: Record<string, string> | null | undefined): {
  config: Record<string, string>;
  volatile: Record<string, string>;
} {
  const kept: Record<string, string> = {};
  const volatile: Record<string, string> = {};
  for (const [key, value] of Object.entries(config ?? {})) {
    if (key.startsWith("volatile.")) volatile[key] = value;
    else kept[key] = value;
  }
  return { config: kept, volatile };
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

/** `container ct1`, `profile default`, with the project when it is not `default`. */
export function usedByWords(user: UsedBy): string {
  const what = user.kind === "instance" ? "container" : user.kind === "profile" ? "profile" : "";
  const where = user.project === defaultProject ? "" : ` (project ${user.project})`;
  return `${what === "" ? "" : `${what} `}${user.name}${where}`;
}
