/**
 * Plan files: `op plan --out PLANFILE` saves a plan, `op apply PLANFILE` applies exactly it
 * (docs/json-output.md, "Plan files"). The file holds the state document the plan was made
 * from, the actions in the contract's shape (their `before` objects are the live state each
 * action read) and a SHA-256 over all of it. An apply re-plans the recorded state against the
 * host under the lock and refuses, naming what moved, unless it gives the same actions.
 */
import { closeSync, readSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { type ErrorDetail, OpError } from "../errors.js";
import { openRegularFile, readRegularFile, writeFileAtomic } from "../files.js";
import { canonicalJson, sha256 } from "../ledger/hash.js";
import type { Action } from "../plugin.js";
import { type ActionJson, actionsJson, formatVersion } from "./contract.js";

/** What a plan file says it is, right after its format_version. */
export const planKind = "op-plan";
/** A plan file is the state file and the live state of each action: a few MB at most. */
const maxPlanFileBytes = 64 * 1024 * 1024;
/** Differing fields named per action when a plan is refused: enough to see what moved. */
const maxFieldsNamed = 10;

/** How the plan was made: an apply of it runs with the same leave. */
export interface PlanOptions {
  allow_restart: boolean;
  adopt: boolean;
  /** `--plugin`: only these plugins' sections; null for all. */
  plugins: string[] | null;
}

export interface PlanFile {
  format_version: string;
  kind: typeof planKind;
  created: string;
  /** The state file's absolute path (or "-"): relative paths in it are taken from its directory. */
  state_file: string;
  /** SHA-256 of the state document's canonical JSON (RFC 8785). */
  state_sha256: string;
  /** The state document the plan was made from. */
  state: unknown;
  options: PlanOptions;
  /** SHA-256 of the canonical JSON of every action's `before`: the live state the plan read. */
  live_sha256: string;
  actions: ActionJson[];
  /** SHA-256 of the canonical JSON of every other field: a changed byte is refused. */
  sha256: string;
}

const hex = (text: string) => sha256(Buffer.from(text, "utf8")).toString("hex");

/** A value as it reads back from the file: hashes and comparisons are of that, not of objects. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The fingerprint of the live state the actions read. */
function liveFingerprint(actions: readonly ActionJson[]): string {
  return hex(canonicalJson(actions.map((action) => action.before)));
}

function sealed(body: Omit<PlanFile, "sha256">): PlanFile {
  return { ...body, sha256: hex(canonicalJson(body)) };
}

/** Writes the plan of `state` (as read from `file`) to `out`, readable by its owner only. */
export function writePlanFile(
  out: string,
  plan: { file: string; state: unknown; options: PlanOptions; actions: readonly Action[] },
): void {
  const actions = plain(actionsJson(plan.actions));
  const body = plain({
    format_version: formatVersion,
    kind: planKind as typeof planKind,
    created: new Date().toISOString(),
    state_file: plan.file === "-" ? "-" : resolve(plan.file),
    state_sha256: hex(canonicalJson(plan.state)),
    state: plan.state,
    options: plan.options,
    live_sha256: liveFingerprint(actions),
    actions,
  });
  writeFileAtomic(out, `${JSON.stringify(sealed(body), null, 2)}\n`, 0o600, "plan file");
}

/**
 * Whether `path` holds a plan file rather than a state file: it starts as op writes one
 * (format_version, then kind "op-plan"), so a truncated one is still told as a plan.
 */
export function looksLikePlanFile(path: string): boolean {
  if (path === "-") return false;
  let fd: number | undefined;
  try {
    // Never blocks: a FIFO or a device is not a plan file (the state file reader refuses it).
    fd = openRegularFile(path, { what: "state file" }).fd;
    const head = Buffer.alloc(256);
    const read = readSync(fd, head, 0, head.length, 0);
    return /^\s*\{\s*"format_version"\s*:\s*"[^"]*"\s*,\s*"kind"\s*:\s*"op-plan"/.test(
      head.subarray(0, read).toString("utf8"),
    );
  } catch {
    // unreadable here: the state file reader says why
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function refuse(path: string, what: string, hint: string): never {
  throw new OpError("invalid-file", `${path}: ${what}`, {
    hint: `${hint}; nothing was changed`,
  });
}

const remake = "make it again with op plan STATEFILE --out PLANFILE";

/** Reads and checks a plan file: complete, of a format this op reads, and not changed since. */
export function readPlanFile(path: string): PlanFile {
  const text = readRegularFile(path, { what: "plan file", maxBytes: maxPlanFileBytes }).toString(
    "utf8",
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    refuse(
      path,
      `not a complete plan file (${(error as Error).message}): truncated or damaged`,
      remake,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    refuse(path, "a plan file is a JSON object", remake);
  const plan = parsed as Partial<PlanFile>;
  if (plan.kind !== planKind)
    refuse(path, `not a plan file (its kind is not "${planKind}")`, remake);
  const version = typeof plan.format_version === "string" ? plan.format_version : "";
  if (version.split(".")[0] !== formatVersion.split(".")[0])
    refuse(
      path,
      `a plan file of format_version ${JSON.stringify(plan.format_version ?? null)}; this op reads ${formatVersion.split(".")[0]}.x`,
      `${remake} with this op`,
    );
  const { sha256: recorded, ...body } = plan;
  let actual: string | undefined;
  try {
    actual = hex(canonicalJson(body));
  } catch {
    actual = undefined;
  }
  if (typeof recorded !== "string" || recorded !== actual)
    refuse(
      path,
      "the plan file's content does not match its sha256: it was changed after op wrote it",
      `do not edit a plan file; ${remake}`,
    );
  checkShape(path, plan);
  return plan as PlanFile;
}

/** A plan whose hash matches can still be one made by hand: its fields are checked too. */
function checkShape(path: string, plan: Partial<PlanFile>): void {
  const file = plan.state_file;
  if (typeof file !== "string" || (file !== "-" && !isAbsolute(file)) || file.includes("\0"))
    refuse(path, "its state_file is not an absolute path (or - for stdin)", remake);
  if (typeof plan.state_sha256 !== "string" || hex(canonicalJson(plan.state)) !== plan.state_sha256)
    refuse(path, "its state does not match its state_sha256", remake);
  const options = plan.options;
  if (
    typeof options !== "object" ||
    options === null ||
    typeof options.allow_restart !== "boolean" ||
    typeof options.adopt !== "boolean" ||
    !(
      options.plugins === null ||
      (Array.isArray(options.plugins) && options.plugins.every((p) => typeof p === "string"))
    )
  )
    refuse(path, "its options are not those op writes", remake);
  if (!Array.isArray(plan.actions)) refuse(path, "its actions are not a list", remake);
  if (plan.live_sha256 !== liveFingerprint(plan.actions))
    refuse(path, "its live_sha256 does not match its actions", remake);
}

/** An action as the plan names it: `modify nftables table inet/x`. */
function named(action: ActionJson): string {
  return `${action.action} ${action.plugin} ${action.resource} ${action.id}`;
}

/**
 * Throws unless `actions` (planned now, under the lock) are the plan's: what moved is named
 * per resource and field.
 */
export function expectPlan(plan: PlanFile, path: string, actions: readonly Action[]): void {
  const now = plain(actionsJson(actions));
  if (canonicalJson(now) === canonicalJson(plan.actions)) return;
  const details: ErrorDetail[] = [];
  const byName = new Map(now.map((action) => [named(action), action]));
  const planned = new Set(plan.actions.map(named));
  for (const action of plan.actions) {
    const current = byName.get(named(action));
    const where = `${action.plugin} ${action.resource} ${action.id}`;
    if (current === undefined) {
      details.push({ path: where, message: `${action.action} is no longer needed` });
      continue;
    }
    const fields = [
      ...differingFields(action.before, current.before, "before"),
      ...differingFields(action.after, current.after, "after"),
    ];
    if (fields.length === 0 && canonicalJson(action) !== canonicalJson(current))
      fields.push("the action");
    if (fields.length > 0)
      details.push({ path: where, message: `${action.action}: moved: ${fields.join(", ")}` });
  }
  for (const action of now)
    if (!planned.has(named(action)))
      details.push({
        path: `${action.plugin} ${action.resource} ${action.id}`,
        message: `${action.action} is needed now and is not in the plan`,
      });
  // Same actions in another order: the host is the same, the plan is not.
  if (details.length === 0) details.push({ path: "", message: "the actions' order changed" });
  throw new OpError("plan-stale", `${path}: the host changed since the plan was made`, {
    details,
    hint: `nothing was changed; ${remake} and review it again`,
  });
}

/** Dotted paths where two JSON values differ, at most `maxFieldsNamed`. */
function differingFields(a: unknown, b: unknown, at: string, found: string[] = []): string[] {
  if (found.length >= maxFieldsNamed) return found;
  const object = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (object(a) && object(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)]))
      differingFields(a[key], b[key], `${at}.${key}`, found);
    return found;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((item, i) => {
      differingFields(item, b[i], `${at}.${i}`, found);
    });
    return found;
  }
  if (canonicalJson(a ?? null) !== canonicalJson(b ?? null)) found.push(at);
  return found;
}
