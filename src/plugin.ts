/**
 * The plugin contract. A plugin checks its section of the file purely, reads the live system
 * in bulk, diffs purely, may refuse a plan (guard), and applies one action at a time; the
 * engine (src/engine/run.ts) decides order and concurrency. A plugin is registered by its
 * manifest (src/registry.ts, plugins/registry.ts).
 */
import type { Runner } from "./exec.js";
import type { IncusClient } from "./incus.js";

/**
 * One thing wrong with (or, as a warning, ignored in) a state file: `path` is its JSON pointer
 * in the file, `hint` what to do about it.
 */
export interface Problem {
  path: string;
  message: string;
  hint?: string;
}

/** What a plugin's check finds: problems refuse the file; warnings are only told. */
export interface CheckReport {
  problems: Problem[];
  warnings: Problem[];
}

/** A problem as op prints it: "PATH: message (hint)". */
export function problemLine({ path, message, hint }: Problem): string {
  return `${path === "" ? "" : `${path}: `}${message}${hint === undefined ? "" : ` (${hint})`}`;
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

/** Everything with a side effect that a plugin may use. */
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

export interface Plugin<Desired = unknown, Live = unknown> {
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
   * key) is a warning. `op validate`, plan and apply all run it.
   */
  check(section: unknown, path: string): CheckReport;
  /** Bulk read of the live objects: no call per resource. */
  query(ctx: Ctx): Promise<Live>;
  /**
   * Turns the validated file section into the form `diff` compares. It may use tools (e.g.
   * nft in a throw-away namespace) and the live state, but changes nothing on the host.
   * It starts while `query` still reads the host: the work that needs only the file is done
   * before awaiting `live` (the engine reports a failed query before a failed prepare).
   * `sections` (the engine always gives it) is every section of the file by plugin name,
   * read-only: what one plugin declares can matter to another (the network plugin accepts,
   * as bridge ports, the container veths the lxc section declares before they exist:
   * plugins/lxc/veths.ts).
   */
  prepare(
    section: unknown,
    live: Promise<Live>,
    ctx: Ctx,
    sections?: ReadonlyMap<string, unknown>,
  ): Promise<Desired>;
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
 * A problem from a line "JSON path: message", the form plugins' older checks write: the path
 * ends at the first ": " (op's JSON paths never hold one: their keys are plugin, table,
 * chain and container names, and indexes).
 */
export function problemOf(line: string): Problem {
  const at = line.indexOf(": ");
  return at === -1
    ? { path: "", message: line }
    : { path: line.slice(0, at), message: line.slice(at + 2) };
}
