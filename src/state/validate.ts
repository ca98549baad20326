/**
 * Checks a parsed state file: the envelope, the version, the plugin names, and each plugin's
 * section against its schema. Every problem is reported at once, each with its JSON path,
 * before anything on the host is read or changed.
 */
import type { ErrorObject, ValidateFunction } from "ajv";
import { OpError } from "../errors.js";
import * as validators from "../generated/validators.js";
import { type Problem, problemLine } from "../problems.js";
import { type Checkable, checkableCopy } from "./prune.js";

export const supportedVersion = 1;

export interface PluginName {
  name: string;
  aliases?: readonly string[];
}

/** A validated file: each known plugin's section, keyed by the plugin's canonical name. */
export interface StateDocument {
  version: number;
  sections: Map<string, unknown>;
  /** Each section's JSON path as the file spells it (`/plugins/net` for network). */
  paths: Map<string, string>;
}

/** The file's sections as far as the schemas go, and every problem they found. */
export interface SchemaReading extends StateDocument {
  problems: Problem[];
  /**
   * What each plugin's `check` may be given: only input its schema accepts, since a check
   * trusts the types its schema promises. A section that passed is given as it is; one that
   * failed, without what the schema refused (prune.ts), so its check still reports the
   * problems the schema cannot see; a section that is itself refused is left out.
   */
  checkable: Map<string, Checkable>;
}

/** Checks a parsed file against the schemas; throws `invalid-file` naming every problem. */
export function validateState(
  document: unknown,
  known: readonly PluginName[],
  source: string,
): StateDocument {
  const { problems, version, sections, paths } = readSchemas(document, known);
  if (problems.length > 0) throw invalid(source, problems);
  return { version, sections, paths };
}

/** The envelope and every section against their schemas, every problem at once; never throws. */
export function readSchemas(document: unknown, known: readonly PluginName[]): SchemaReading {
  const problems: Problem[] = [];
  const sections = new Map<string, unknown>();
  const paths = new Map<string, string>();
  const checkable = new Map<string, Checkable>();
  if (!validators.validate_state(document)) {
    problems.push(...describeErrors(validators.validate_state.errors ?? [], ""));
  }
  const { version, plugins } = (isObject(document) ? document : {}) as {
    version?: unknown;
    plugins?: unknown;
  };
  if (typeof version === "number" && Number.isInteger(version) && version !== supportedVersion) {
    problems.push({
      path: "/version",
      message: `op reads version ${supportedVersion}; this file says ${version}`,
    });
  }
  // An envelope problem elsewhere (an unknown top-level field) does not hide the sections'.
  const entries = isObject(plugins) ? Object.entries(plugins) : [];
  const seenAs = new Map<string, string>();
  for (const [key, section] of entries) {
    const path = `/plugins/${escapePointer(key)}`;
    const plugin = known.find((p) => p.name === key || p.aliases?.includes(key));
    if (!plugin) {
      const names = known.flatMap((p) => [p.name, ...(p.aliases ?? [])]);
      const guess = closest(key, names);
      problems.push({
        path,
        message: `unknown plugin "${key}"; ${guess ? `did you mean "${guess}"? ` : ""}op knows ${describeKnown(known)}`,
      });
      continue;
    }
    const earlier = seenAs.get(plugin.name);
    if (earlier !== undefined) {
      problems.push({ path, message: `plugin "${plugin.name}" is already given as "${earlier}"` });
      continue;
    }
    seenAs.set(plugin.name, key);
    sections.set(plugin.name, section);
    paths.set(plugin.name, path);
    // Not an object: the envelope's schema said so, and there is nothing to check inside.
    if (!isObject(section)) continue;
    const validate = validatorFor(plugin.name);
    if (validate === undefined || validate(section)) {
      checkable.set(plugin.name, { section, filePath: (at) => at });
      continue;
    }
    const errors = validate.errors ?? [];
    problems.push(...describeErrors(errors, path, `${plugin.name}.schema.json`));
    const pruned = checkableCopy(section, path, errors, validate);
    if (pruned !== undefined) checkable.set(plugin.name, pruned);
  }
  return {
    version: typeof version === "number" ? version : supportedVersion,
    sections,
    paths,
    problems,
    checkable,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function validatorFor(name: string): ValidateFunction | undefined {
  const exported = (validators as Record<string, unknown>)[
    `validate_${name.replace(/[^A-Za-z0-9]/g, "_")}`
  ];
  return typeof exported === "function" ? (exported as ValidateFunction) : undefined;
}

export function invalid(source: string, problems: readonly Problem[]): OpError {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return new OpError("invalid-file", `${source} is not a valid state file (${count})`, {
    details: problems.map((problem) => ({ ...problem, path: problem.path || "/" })),
    hint: "each line gives the JSON path of a problem and what was expected; nothing was changed",
  });
}

function describeKnown(known: readonly PluginName[]): string {
  return known
    .map((p) =>
      p.aliases?.length ? `"${p.name}" (also "${p.aliases.join('", "')}")` : `"${p.name}"`,
    )
    .join(", ");
}

/**
 * One problem per schema violation, worded as what was expected at which path. `prefix` is
 * where the validated value sits in the file; `schemaId` names its schema, whose field
 * descriptions explain a value in the wrong form.
 */
export function describeErrors(
  errors: readonly ErrorObject[],
  prefix: string,
  schemaId = "state.schema.json",
): Problem[] {
  const branches = branchesOf(errors);
  const inBranch = new Map<ErrorObject, ErrorObject>();
  for (const [choice, found] of branches) for (const e of found) inBranch.set(e, choice);
  const wrongType = new Set(
    errors.filter((e) => e.keyword === "type" && !inBranch.has(e)).map((e) => e.instancePath),
  );
  const problems = errors
    // A failed "if" repeats what its "then" already said, and a failed "propertyNames" what
    // the check of the name itself said; the form of a value of the wrong type (a `not` that
    // a number passes) is beside the point.
    .filter((e) => e.keyword !== "if" && e.keyword !== "propertyNames")
    .filter(
      (e) => !(wrongType.has(e.instancePath) && (e.keyword === "not" || e.keyword === "pattern")),
    )
    .flatMap((e): Problem[] => {
      // What one alternative said about the value itself is told once, by the choice.
      if (inBranch.get(e)?.instancePath === e.instancePath) return [];
      const found = branches.get(e);
      if (found !== undefined) {
        // A value that fits one branch's shape and fails inside it (a prefix of 40 in an
        // address object) is told by that deeper error; otherwise one line for the field.
        if (found.some((d) => d.instancePath !== e.instancePath)) return [];
        return [{ path: pathOf(prefix, e), message: notInForm(e, found, schemaId) }];
      }
      return [{ path: pathOf(prefix, e), message: explain(e, schemaId) }];
    });
  const seen = new Set<string>();
  return problems.filter((p) => {
    const line = problemLine(p);
    if (seen.has(line)) return false;
    seen.add(line);
    return true;
  });
}

function pathOf(prefix: string, error: ErrorObject): string {
  return `${prefix}${error.instancePath}` || "/";
}

/**
 * The errors each failed anyOf/oneOf collected from its alternatives. ajv reports them just
 * before the choice itself; one is found in the choice's schema, or in a definition one of
 * its alternatives refers to (`$ref`), and always at or inside the choice's value.
 */
function branchesOf(errors: readonly ErrorObject[]): Map<ErrorObject, ErrorObject[]> {
  const branches = new Map<ErrorObject, ErrorObject[]>();
  errors.forEach((choice, index) => {
    if (choice.keyword !== "anyOf" && choice.keyword !== "oneOf") return;
    const found: ErrorObject[] = [];
    for (let i = index - 1; i >= 0; i--) {
      const e = errors[i] as ErrorObject;
      const inside =
        e.instancePath === choice.instancePath ||
        e.instancePath.startsWith(`${choice.instancePath}/`);
      const fromChoice =
        e.schemaPath.startsWith(`${choice.schemaPath}/`) ||
        e.schemaPath.startsWith("#/definitions/");
      if (!inside || !fromChoice) break;
      found.push(e);
    }
    branches.set(choice, found);
  });
  return branches;
}

function explain(error: ErrorObject, schemaId: string): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "additionalProperty":
    case "additionalProperties": {
      const field = String(params.additionalProperty);
      const known = Object.keys(
        (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ??
          {},
      );
      const guess = closest(field, known);
      return `unknown field "${field}"${guess ? `; did you mean "${guess}"?` : ""}`;
    }
    case "required":
      return `missing required field "${String(params.missingProperty)}"`;
    case "enum":
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return `must be ${JSON.stringify(params.allowedValue)}`;
    case "type":
      return `must be of type ${String(params.type)}`;
    case "pattern":
    case "not":
      // The regular expression itself helps nobody; say what was given and what is expected.
      return expectedForm(
        error.data,
        error.parentSchema?.description ?? fieldDescription(schemaId, error.instancePath),
      );
    default:
      return error.message ?? error.keyword;
  }
}

/** A value none of a field's alternatives accepts, explained with the field's description. */
function notInForm(choice: ErrorObject, found: readonly ErrorObject[], schemaId: string): string {
  // The alternative the value has the type of describes it best (an id given as text).
  const sameType = found.find(
    (e) =>
      e.instancePath === choice.instancePath &&
      (e.keyword === "pattern" || e.keyword === "not") &&
      e.parentSchema?.description !== undefined,
  );
  return expectedForm(
    choice.data,
    sameType?.parentSchema?.description ?? fieldDescription(schemaId, choice.instancePath),
  );
}

function expectedForm(data: unknown, description: string | undefined): string {
  const given = typeof data === "string" ? `${JSON.stringify(data)} ` : "";
  return `${given}is not in the expected form${description ? `: ${firstSentence(description)}` : ""}`;
}

/**
 * The description of the field at `instancePath` itself (found by its path in the document,
 * with `*` for an array item or a free-form key), never one of an enclosing object or section.
 */
function fieldDescription(schemaId: string, instancePath: string): string | undefined {
  const known = validators.fieldDescriptions[schemaId] ?? {};
  let candidates = [""];
  for (const segment of instancePath.split("/").slice(1)) {
    candidates = candidates.flatMap((at) =>
      [`${at}/${segment}`, `${at}/*`].filter((path) => hasPrefix(known, path)),
    );
    if (candidates.length === 0) return undefined;
  }
  return candidates.map((path) => known[path]).find((d) => d !== undefined);
}

/** Whether some described field lies at or under `path` (prunes the search above). */
function hasPrefix(known: Record<string, string>, path: string): boolean {
  let prefixes = describedPrefixes.get(known);
  if (prefixes === undefined) {
    prefixes = new Set();
    for (const field of Object.keys(known)) {
      const parts = field.split("/");
      for (let end = 2; end <= parts.length; end++) prefixes.add(parts.slice(0, end).join("/"));
    }
    describedPrefixes.set(known, prefixes);
  }
  return prefixes.has(path);
}
const describedPrefixes = new WeakMap<Record<string, string>, Set<string>>();

function firstSentence(text: string): string {
  return text.split(/(?<=\.)\s/)[0] ?? text;
}

/**
 * The known name closest to a misspelt one, if it is close enough to be a likely typo: at
 * most one edit for short names, two for longer ones (case and `_`/`-` count for nothing).
 */
export function closest(given: string, known: readonly string[]): string | undefined {
  const fold = (name: string) => name.toLowerCase().replace(/[-_]/g, "");
  const allowed = given.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(fold(given), fold(name));
    if (distance <= allowed && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

/** Edits (insert, delete, replace, swap of neighbours) from `a` to `b`; long names give up. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return a === b ? 0 : Number.POSITIVE_INFINITY;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        (rows[0] as number[])[j] = j;
        continue;
      }
      const row = rows[i] as number[];
      const up = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(
        (up[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (up[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = distance;
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** A key as one segment of a JSON pointer (RFC 6901). */
export function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
