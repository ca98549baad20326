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

/**
 * What the actions on one kind of resource carry. A kind with no action of some kind (op never
 * deletes an image) says `never` there.
 */
export interface Payloads {
  /** A create's `after`. */
  create: unknown;
  /** A modify's `before` and `after`, and the type of its change entries. */
  modify: { before: unknown; after: unknown; change: FieldChange };
  /** A delete's `before`. */
  delete: unknown;
}

/**
 * The payloads of a kind in its usual form: a create carries the desired form (or `Created`),
 * a modify the live form before and the desired one after, a delete the live form (or
 * `Deleted`); `never` for an action kind a resource does not have.
 */
export type Kind<
  Desired,
  Live,
  Created = Desired,
  Deleted = Live,
  Change extends FieldChange = FieldChange,
> = {
  create: Created;
  modify: { before: Live; after: Desired; change: Change };
  delete: Deleted;
};

/**
 * A plugin's resource kinds, by name (`container` and `image` in lxc, `link`, `route` and
 * `ovs-db` in network), each with its payloads. An action's `resource` names its kind, so
 * `apply` narrows an action by `resource` and `kind` without casts. The default, any name
 * with unknown payloads, is what the engine works with.
 */
export type ResourceKinds = Record<string, Payloads>;

/**
 * A resource as another action names it in `needs` or `expects`. Built only by a function the
 * plugin that owns the resource exports (plugins/network/refs.ts: linkRef, ovsDatabaseRef), so
 * no plugin spells another's ids. The engine keys refs with refKey (src/engine/plan.ts).
 */
export interface ResourceRef {
  readonly plugin: string;
  readonly resource: string;
  readonly id: string;
}

/** A resource as people read it: `network link br0`. */
export function describeRef(ref: ResourceRef): string {
  return `${ref.plugin} ${ref.resource} ${ref.id}`;
}

/**
 * An object the file names that exists and op did not create: the action takes it over (tags it
 * as op's and makes it match the file, in one step) or deletes it. Naming an object is not leave
 * to take it: the engine refuses the plan unless the entry says `adopt: true` or the run has
 * `--adopt` (src/engine/reconcile.ts adoptionProblems).
 */
export interface Adoption {
  /** The JSON path of the object's entry in the file (`/plugins/network/interfaces/2`). */
  path: string;
  /** The entry says `adopt: true`. */
  allowed: boolean;
  /** What is adopted, when it is not the action's own resource (an OVS bridge in `ovs-db`). */
  what?: string;
}

interface ActionBase<Resource extends string> extends ResourceRef {
  /** The kind of resource this action changes: one its plugin declares (Plugin.resources). */
  resource: Resource;
  /**
   * The resource's id, unique within its plugin (the ledger's `target`), e.g. `inet/op_demo`
   * or `ct100`: made for people to read; code tells kinds apart by `resource`.
   */
  id: string;
  /** Why the action is needed, in a few words a person reads in the plan. */
  reason: string;
  /**
   * Resources this action needs. If the action on one of them fails, this one is skipped; the
   * engine also orders it after that action.
   */
  needs?: ResourceRef[];
  /**
   * Resources missing on the host that this action can only succeed with if another action of
   * the same run creates them (a container's bridge). The engine warns at plan time when
   * nothing does; the action itself then fails with its own error.
   */
  expects?: ResourceRef[];
  /**
   * Why the action waits for the user's leave (a restart the file does not allow): the plan
   * shows it, the run does not apply it and reports the host as not converged.
   */
  held?: string;
  /**
   * The change restarts a running container (or would, once allowed: see `held`); the plan's
   * `--json` says so to callers that must know before they apply (docs/json-output.md).
   */
  restart?: boolean;
  /**
   * Set when the object is not op's (see Adoption): a modify is then an adopt. Several when
   * one action takes over several entries' objects (an OVSDB transaction's bridges).
   */
  adopt?: Adoption | readonly Adoption[];
}

/** The create, modify and delete actions on one resource kind. */
export type ActionOn<Resource extends string, P extends Payloads> =
  | (ActionBase<Resource> & { kind: "create"; after: P["create"] })
  | (ActionBase<Resource> & {
      kind: "modify";
      before: P["modify"]["before"];
      after: P["modify"]["after"];
      changes: P["modify"]["change"][];
    })
  | (ActionBase<Resource> & { kind: "delete"; before: P["delete"] });

/** An action on any of a plugin's resource kinds: a union discriminated by `resource` and `kind`. */
export type Action<R extends ResourceKinds = ResourceKinds> = {
  [Resource in keyof R & string]: ActionOn<Resource, R[Resource]>;
}[keyof R & string];
export type CreateAction<R extends ResourceKinds = ResourceKinds> = Extract<
  Action<R>,
  { kind: "create" }
>;
export type ModifyAction<R extends ResourceKinds = ResourceKinds> = Extract<
  Action<R>,
  { kind: "modify" }
>;
export type DeleteAction<R extends ResourceKinds = ResourceKinds> = Extract<
  Action<R>,
  { kind: "delete" }
>;
export type ActionKind = Action["kind"];

/**
 * What the plan and the ledger call an action: a modify of an object op did not create is an
 * `adopt`, so taking something over is never mistaken for tuning one's own.
 */
export type ActionVerb = ActionKind | "adopt";

export function verbOf(action: Pick<Action, "kind" | "adopt">): ActionVerb {
  return action.kind === "modify" && action.adopt !== undefined ? "adopt" : action.kind;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/**
 * What an applied action produced that its plan could not know (lxc: the cluster member Incus
 * placed a container on): the engine writes `recorded` into the action's `ok` ledger record.
 */
export interface Applied {
  recorded?: Record<string, unknown>;
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
  /** `--allow-restart`: a change Incus takes only at start may restart a running container. */
  allowRestart?: boolean;
  /**
   * `--adopt`: every object the file names that op did not create may be adopted (a first run
   * right after `op export --all`), as if each entry said `adopt: true`.
   */
  adopt?: boolean;
  /** The state file's directory: relative paths in the file are taken from it (default: cwd). */
  stateDir?: string;
}

/** What `op query` prints for people: a table of the live objects. */
export interface LiveReport {
  /** A section's heading under the plugin's name (`profiles`); the first table may have none. */
  title?: string;
  columns: string[];
  rows: string[][];
}

/** What the file gives a plugin's normalise besides its own section. */
export interface FileView {
  /**
   * `--adopt`: every object the file names that op did not create may be adopted (a first run
   * right after `op export --all`), as if each entry said `adopt: true`.
   */
  adopt?: boolean;
  /** The state file's directory: relative paths in the file are taken from it. */
  stateDir?: string;
  /**
   * Every section of the file by plugin name, read-only: what one plugin declares can matter
   * to another (the network plugin accepts, as bridge ports, the container veths the lxc
   * section declares before they exist: plugins/lxc/veths.ts).
   */
  sections: ReadonlyMap<string, unknown>;
}

/**
 * Whether an object is in the section's `ignore` list. A glob with a `/` is matched against the
 * object's qualified name (`family/name` of an nftables table, `project/name` of an Incus
 * container), one without against its name; an object without a qualified name has only its name.
 */
export type IgnoredTest = (name: string, qualified?: string) => boolean;

/** An object a section declares, as its `ignore` list sees it. */
export interface IgnorableName {
  /** What it is, for messages: `link`, `container`, `table`. */
  noun: string;
  name: string;
  qualified?: string;
  /** The JSON path of its name under the section (`/interfaces/0/name`). */
  path: string;
}

/**
 * How a section's `ignore` list applies to a plugin's objects. The engine hides what it
 * matches from the live state before anything else sees it (src/state/ignore.ts), so no plan,
 * prune or guard of the plugin can touch it, and refuses a file whose list matches an object
 * the same section declares.
 */
export interface Ignorable<Live> {
  /** The objects the section (as its schema accepted it) declares. Pure. */
  declared(section: unknown): IgnorableName[];
  /**
   * The live state as if the ignored objects were not on the host: gone, and gone from what
   * refers to them (a bridge's ports). Pure; what protects the host (its uplinks) stays.
   */
  without(live: Live, ignored: IgnoredTest): Live;
}

export interface Plugin<
  Desired = unknown,
  Live = unknown,
  Normalised = unknown,
  R extends ResourceKinds = ResourceKinds,
> {
  readonly name: string;
  /**
   * The resource kinds its actions change, each with what it is in a few words: every
   * action's `resource` is one of them, and the compiler holds the list to R's kinds.
   */
  readonly resources: { readonly [Resource in keyof R]: string };
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
  /** The section's `ignore` list applies to these objects; without it, the schema has none. */
  readonly ignore?: Ignorable<Live>;
  /**
   * Bulk read of the live objects: no call per resource. `section` is the plugin's section of
   * the state file when the command has one (as parsed, maybe not yet checked): it may say
   * where the objects are (lxc: a remote Incus, plugins.lxc.remote).
   */
  query(ctx: Ctx, section?: unknown): Promise<Live>;
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
  diff(desired: Desired, live: Live): Action<R>[];
  /**
   * Problems with a plan that the file alone cannot show (a change that would cut the host off
   * its network). The engine runs it after diff; any problem refuses the whole plan, so a guard
   * returns none when `options` allow what it guards against. Pure.
   */
  guard?(actions: readonly Action<R>[], live: Live, options: RunOptions): Problem[];
  /** Applies one action; idempotent. Most return nothing; what one returns goes into the ledger. */
  // biome-ignore lint/suspicious/noConfusingVoidType: an apply that records nothing returns Promise<void>
  apply(action: Action<R>, ctx: Ctx): Promise<void | Applied>;
  /** One table, or one per kind of object (lxc: containers, profiles, networks...). */
  report(live: Live): LiveReport | LiveReport[];
  /**
   * What `op query --json` prints of the live state (default: all of it). Without `all`, a
   * plugin may leave out what the server sets for itself (Incus's volatile keys).
   */
  queryJson?(live: Live, options: { all: boolean }): unknown;
  /**
   * `op export`: the live objects as this plugin's section of a state file, in the form
   * `op apply` reads, such that planning it against the same host gives no action. Without
   * `all`, only the objects op created; with it, also the others of the kinds op manages.
   * `live` is what `query` read; a plugin whose live form lacks what the file is written in
   * may read more through ctx, changing nothing (nftables: the rule text nft prints).
   * Plugins export in reverse create order, and `file` holds the sections exported before:
   * an object one plugin makes for another's (an Incus network's bridge) is the maker's.
   */
  exportSection?(
    live: Live,
    options: { all: boolean },
    ctx: Ctx,
    file: FileView,
  ): ExportedSection | Promise<ExportedSection>;
  /**
   * `op inventory`: the hosts the file's section declares that exist, as an Ansible inventory
   * (lxc: its containers), in the form asked. Reads the host, changes nothing. `section` is
   * undefined when the file has none (an empty inventory).
   */
  inventory?(
    section: unknown,
    ctx: Ctx,
    file: FileView,
    request: InventoryRequest,
  ): Promise<string>;
  /** `op exec` and `op file`: work inside the plugin's instances (lxc: Incus instances). */
  readonly instances?: InstanceWork;
  /**
   * Undo (src/engine/images.ts): what `actions` touch, as plain JSON that `image` reads back:
   * the resources themselves and those an undo must set too (a port's old and new bridge).
   * Pure. A plugin without it cannot be undone.
   */
  imageScope?(actions: readonly Action<R>[], live: Live): unknown;
  /**
   * The plugin's section of a state file that makes the resources in `scope` as `live` has
   * them (`ensure: absent` for those it lacks), with what it cannot describe refused. Reads
   * only, but for `keep`: given only while a run's pre-image is taken (before its first
   * change), it keeps a file the section then names by hash (lxc: a container's backup before
   * the run deletes it); post-images and checks get none.
   */
  image?(
    scope: unknown,
    live: Live,
    ctx: Ctx,
    keep?: ImageKeep,
  ): ResourceImage | Promise<ResourceImage>;
}

/** Where a pre-image keeps a file, beside the blob that names it (src/ledger/blobs.ts). */
export interface ImageKeep {
  /** `fill` writes the file at the path it is given; returns the file's SHA-256. */
  file(fill: (path: string) => Promise<void>): Promise<string>;
}

/** The resources of a scope as a section of a state file. */
export interface ResourceImage {
  /** Valid against the plugin's schema; undefined: nothing to restore. */
  section: unknown;
  /** What the section cannot restore, one line each naming the resource and why. */
  refused: string[];
  /**
   * What the host says identifies each resource's version, by resource (lxc: Incus's ETag of
   * each container, `container web ETag`). A post-image's marks that differ now refuse an undo.
   */
  marks?: Record<string, string>;
}

/**
 * Work inside an instance that is not a change of state (running a command, copying files in
 * or out): nothing is planned or written to the ledger. Each member refuses an instance op
 * did not create unless the request says `any`.
 */
export interface InstanceWork {
  /**
   * `op exec`: runs a command in a running instance, its output streamed to `request.stdio` as
   * it comes; resolves once the command ended and all its output is written.
   */
  exec(request: ExecRequest, ctx: Ctx): Promise<ExecResult>;
  /** `op file push`: local files and trees into an instance (running or stopped). */
  push(request: FilePush, ctx: Ctx): Promise<FileCopyReport>;
  /** `op file pull`: files and trees out of instances, written locally by rename. */
  pull(request: FilePull, ctx: Ctx): Promise<FileCopyReport>;
}

/** What `op exec` asks for: the command line's options, checked, and the streams to use. */
export interface ExecRequest {
  /** `NAME` or `PROJECT/NAME` as typed (the plugin parses and checks it). */
  instance: string;
  /** The command and its arguments, run as given (no shell). */
  command: readonly string[];
  /** Work in an instance op did not create. */
  any: boolean;
  /** Absolute directory inside the instance (default: Incus's, the user's home). */
  cwd?: string;
  environment: Readonly<Record<string, string>>;
  user?: number;
  group?: number;
  /** Seconds after which the command is killed (SIGKILL) and the result says `timedOut`. */
  timeoutSeconds?: number;
  /** Run in a pseudo terminal of this size (stdin and stdout are then one stream). */
  terminal?: ExecTerminal;
  stdio: {
    stdin: NodeJS.ReadableStream;
    stdout: NodeJS.WritableStream;
    stderr: NodeJS.WritableStream;
  };
  /**
   * Signals op receives, to pass on to the command (`send` takes a signal number); returns
   * the function that stops listening.
   */
  forwardSignals?(send: (signal: number) => void): () => void;
}

export interface ExecTerminal {
  columns: number;
  rows: number;
  /** Calls `listener` with each new size; returns the function that stops listening. */
  onResize(listener: (size: { columns: number; rows: number }) => void): () => void;
}

export interface ExecResult {
  instance: string;
  project: string;
  /** The command's exit code (127: not found, 126: not executable, 128+N: killed by signal N). */
  exitCode: number;
  /** Killed at `timeoutSeconds`. */
  timedOut: boolean;
  /** Why Incus could not run it (e.g. "Command not found"); already written to stderr. */
  message?: string;
}

/**
 * `NAME:/PATH` as typed, split at its first colon: `instance` is `NAME` or `PROJECT/NAME`,
 * checked by the plugin that knows the instances' names.
 */
export interface InstancePath {
  instance: string;
  path: string;
}

export interface FilePush {
  /** Local paths, as given. */
  sources: string[];
  /** Where they go; a path ending in `/`, or a directory that exists, takes them under it. */
  target: InstancePath;
  /** Permission bits of every file pushed (default: each local file's own). */
  mode?: number;
  /** Owner in the instance of everything pushed (default 0). */
  uid?: number;
  gid?: number;
  /** `-r`: a directory is copied with everything under it. */
  recursive: boolean;
  /** `-p`: missing directories of the target path are created. */
  createDirs: boolean;
  /** `--any`: also an instance op did not create. */
  any: boolean;
}

export interface FilePull {
  sources: InstancePath[];
  /** A local path; a directory that exists takes them under it. */
  target: string;
  recursive: boolean;
  any: boolean;
  /** Aborted by the caller (a signal): the pull stops and removes the file it was writing. */
  signal?: AbortSignal;
}

/** What one push or pull copied. */
export interface FileCopyReport {
  files: number;
  directories: number;
  symlinks: number;
  /** Bytes of file content. */
  bytes: number;
}

/** An instance as the command line names it: `NAME` or `PROJECT/NAME`. */
export interface InstanceName {
  name: string;
  /** Undefined: the default project. */
  project?: string;
}

/** A plugin's part of `op export`. */
export interface ExportedSection {
  /** The section, valid against the plugin's schema; undefined: nothing to export. */
  section: unknown;
  /**
   * What the host has that the section leaves out, one line each naming the object (a field
   * the file format lacks): the export is then not the whole host, and the user should know.
   */
  notes: string[];
}

/** What `op inventory` prints: an inventory file, or an answer of Ansible's dynamic protocol. */
export type InventoryRequest =
  | { format: "yaml" | "ini" | "json" }
  | { list: true }
  | { host: string };

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
