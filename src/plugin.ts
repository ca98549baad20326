/**
 * The plugin contract. A plugin checks its section of the file purely, reads the live system
 * in bulk, diffs purely, may refuse a plan (guard), and applies one action at a time; the
 * engine (src/engine/run.ts) decides order and concurrency. A plugin is registered by its
 * manifest (src/registry.ts, plugins/registry.ts).
 */
import type { Runner } from "./exec.js";
import type { Host } from "./host/index.js";
import type { Settings } from "./host/settings.js";
import type { IncusClient } from "./incus.js";

import type { Problem } from "./problems.js";

export type { Host } from "./host/index.js";
export type { Settings } from "./host/settings.js";
export { type Problem, problemFromLine as problemOf, problemLine } from "./problems.js";

/** What a plugin's check finds: problems refuse the file; warnings are only told. */
export interface CheckReport {
  problems: Problem[];
  warnings: Problem[];
}

/** One field that differs. A missing `before` means added; a missing `after`, removed. */
export interface FieldChange {
  path: string;
  before?: unknown;
  after?: unknown;
}

interface ActionBase {
  plugin: string;
  /** The resource's id within its plugin, e.g. `inet/op_demo` or `ct100`. */
  id: string;
  /** Why the action is needed, in a few words a person reads in the plan. */
  reason: string;
  /**
   * Resources this action needs (`plugin:id`). If the action on one of them fails, this one
   * is skipped; the engine also orders it after that action.
   */
  needs?: string[];
  /**
   * Resources (`plugin:id`) missing on the host that this action can only succeed with if
   * another action of the same run creates them (a container's bridge). The engine warns at
   * plan time when nothing does; the action itself then fails with its own error.
   */
  expects?: string[];
}

export type CreateAction = ActionBase & { kind: "create"; after: unknown };
export type ModifyAction = ActionBase & {
  kind: "modify";
  before: unknown;
  after: unknown;
  changes: FieldChange[];
};
export type DeleteAction = ActionBase & { kind: "delete"; before: unknown };
export type Action = CreateAction | ModifyAction | DeleteAction;
export type ActionKind = Action["kind"];

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** Everything with a side effect that a plugin may use: a plugin reaches the host only here. */
export interface Ctx {
  exec: Runner;
  clock: () => Date;
  log: Logger;
  /** Where plugins may keep derived, disposable data (e.g. nftables' normalised rule forms). */
  cacheDir: string | undefined;
  /** The secret that authenticates cache entries (see src/cache.ts); no key, no cache. */
  cacheKeyFile?: string | undefined;
  /** What the user allowed on the command line for this run. */
  options: RunOptions;
  /** The Incus API client (lxc plugin); optional so contexts without Incus stay valid. */
  incus?: IncusClient;
  /** The host's files (sysfs, procfs) and Open vSwitch (src/host/). */
  host: Host;
  /** The environment's defaults, read and checked once (src/host/settings.ts). */
  settings: Settings;
}

export interface RunOptions {
  /** `--allow-uplink`: the plan may delete, take down or re-address the default-route link. */
  allowUplink: boolean;
  /** The state file's directory: relative paths in the file are taken from it (default: cwd). */
  stateDir?: string;
}

/** What `op query` prints for people: a table of the live objects. */
export interface LiveReport {
  columns: string[];
  rows: string[][];
}

/** What the file gives a plugin's normalise besides its own section. */
export interface FileView {
  /** The state file's directory: relative paths in the file are taken from it. */
  stateDir?: string;
  /**
   * Every section of the file by plugin name, read-only: what one plugin declares can matter
   * to another (the network plugin accepts, as bridge ports, the container veths the lxc
   * section declares before they exist: plugins/lxc/veths.ts).
   */
  sections: ReadonlyMap<string, unknown>;
}

export interface Plugin<Desired = unknown, Live = unknown, Normalised = unknown> {
  readonly name: string;
  /** Other names accepted for this plugin's section in a state file (e.g. `net`). */
  readonly aliases?: readonly string[];
  /**
   * How many of this plugin's actions may run at once (default 8; `--concurrency` overrides).
   * A plugin whose `apply` batches concurrent actions into one process can take them all.
   */
  readonly concurrency?: number;
  /**
   * Problems in the file's section (already valid against its schema) that the schema cannot
   * express: duplicate names, references, values that disagree. `path` is the section's own
   * JSON path. Pure: no I/O, clock or environment. What is not wrong but is ignored (an unused
   * key) is a warning. `op validate`, plan and apply all run it. What it needs of the
   * environment's defaults (op's own paths) it gets as `settings`, never by reading it.
   */
  check(section: unknown, path: string, settings: Settings): CheckReport;
  /** Bulk read of the live objects: no call per resource. */
  query(ctx: Ctx): Promise<Live>;
  /**
   * The file's half of turning the checked section into the form `diff` compares: what needs
   * only the file. It may use throw-away tools (nft in a namespace of its own) but reads
   * nothing of the host; the engine starts it while `query` reads the host.
   */
  normalise(section: unknown, ctx: Ctx, file: FileView): Promise<Normalised>;
  /**
   * The host's half: what needs the live state (a foreign object in the way, a default
   * that depends on the host). Changes nothing. The engine reports a failed query before a
   * failed normalise, since a host that could not be read may explain it.
   */
  resolve(normalised: Normalised, live: Live, ctx: Ctx): Desired | Promise<Desired>;
  /** Pure: no I/O, clock or environment. */
  diff(desired: Desired, live: Live): Action[];
  /**
   * Problems with a plan that the file alone cannot show (a change that would cut the host off
   * its network). The engine runs it after diff; any problem refuses the whole plan, so a guard
   * returns none when `options` allow what it guards against. Pure.
   */
  guard?(actions: readonly Action[], live: Live, options: RunOptions): Problem[];
  /** Applies one action; idempotent. */
  apply(action: Action, ctx: Ctx): Promise<void>;
  report(live: Live): LiveReport;
  /**
   * What `op query --json` prints of the live state (default: all of it). Without `all`, a
   * plugin may leave out what the server sets for itself (Incus's volatile keys).
   */
  queryJson?(live: Live, options: { all: boolean }): unknown;
}

/** Compile-time proof that a switch over action kinds handled them all. */
export function unreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}

/**
 * For a plugin whose preparation is one function that awaits the live state midway (its file
 * half first): normalise starts it with a live state to come, resolve hands the live state
 * over and gets its result. The file half so still runs while `query` reads the host.
 */
export function liveLater<Live, Desired>(
  prepare: (live: Promise<Live>) => Promise<Desired>,
): { resolve(live: Live): Promise<Desired> } {
  let hand: (live: Live) => void = () => {};
  const live = new Promise<Live>((resolve) => {
    hand = resolve;
  });
  const desired = prepare(live);
  // Awaited in resolve; a file half that fails before is reported there, not as unhandled.
  desired.catch(() => {});
  return {
    resolve: (value) => {
      hand(value);
      return desired;
    },
  };
}
