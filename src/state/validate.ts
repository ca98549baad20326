/**
 * Checks a parsed state file: the envelope, the version, the plugin names, and each plugin's
 * section against its schema. Every problem is reported at once, each with its JSON path,
 * before anything on the host is read or changed.
 */
import type { ErrorObject, ValidateFunction } from "ajv";
import { OpError } from "../errors.js";
import * as validators from "../generated/validators.js";

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

export function validateState(
  document: unknown,
  known: readonly PluginName[],
  source: string,
): StateDocument {
  const problems: string[] = [];
  if (!validators.validate_state(document)) {
    problems.push(...describeErrors(validators.validate_state.errors ?? [], ""));
    throw invalid(source, problems);
  }
  const { version, plugins } = document as { version: number; plugins: Record<string, unknown> };
  if (version !== supportedVersion) {
    problems.push(`/version: op reads version ${supportedVersion}; this file says ${version}`);
  }

  const sections = new Map<string, unknown>();
  const paths = new Map<string, string>();
  const seenAs = new Map<string, string>();
  for (const [key, section] of Object.entries(plugins)) {
    const plugin = known.find((p) => p.name === key || p.aliases?.includes(key));
    if (!plugin) {
      problems.push(
        `/plugins/${escapePointer(key)}: unknown plugin "${key}"; op knows ${describeKnown(known)}`,
      );
      continue;
    }
    const earlier = seenAs.get(plugin.name);
    if (earlier !== undefined) {
      problems.push(
        `/plugins/${escapePointer(key)}: plugin "${plugin.name}" is already given as "${earlier}"`,
      );
      continue;
    }
    seenAs.set(plugin.name, key);
    const validate = validatorFor(plugin.name);
    if (validate && !validate(section)) {
      const schemaId = `${plugin.name}.schema.json`;
      problems.push(
        ...describeErrors(validate.errors ?? [], `/plugins/${escapePointer(key)}`, schemaId),
      );
    }
    sections.set(plugin.name, section);
    paths.set(plugin.name, `/plugins/${escapePointer(key)}`);
  }
  if (problems.length > 0) throw invalid(source, problems);
  return { version, sections, paths };
}

function validatorFor(name: string): ValidateFunction | undefined {
  const exported = (validators as Record<string, unknown>)[
    `validate_${name.replace(/[^A-Za-z0-9]/g, "_")}`
  ];
  return typeof exported === "function" ? (exported as ValidateFunction) : undefined;
}

export function invalid(source: string, problems: string[]): OpError {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return new OpError("invalid-file", `${source} is not a valid state file (${count})`, {
    details: problems,
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

/** One line per schema violation, worded as what was expected at which path. */
export function describeErrors(
  errors: readonly ErrorObject[],
  prefix: string,
  schemaId = "state.schema.json",
): string[] {
  const lines = errors
    // A failed "if" repeats what its "then" already said, and a failed "propertyNames" what
    // the check of the name itself said; anyOf/oneOf summaries add nothing.
    .filter((e) => e.keyword !== "if" && e.keyword !== "propertyNames")
    .map((e) => {
      const path = `${prefix}${e.instancePath}` || "/";
      return `${path}: ${explain(e, schemaId)}`;
    });
  return [...new Set(lines)];
}

function explain(error: ErrorObject, schemaId: string): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "additionalProperty":
    case "additionalProperties":
      return `unknown field "${String(params.additionalProperty)}"`;
    case "required":
      return `missing required field "${String(params.missingProperty)}"`;
    case "enum":
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return `must be ${JSON.stringify(params.allowedValue)}`;
    case "type":
      return `must be of type ${String(params.type)}`;
    case "pattern":
    case "not": {
      // The regular expression itself helps nobody; say what was given and what is expected.
      const description =
        error.parentSchema?.description ?? nearestDescription(schemaId, error.schemaPath);
      const given = typeof error.data === "string" ? `${JSON.stringify(error.data)} ` : "";
      return `${given}is not in the expected form${description ? `: ${firstSentence(description)}` : ""}`;
    }
    default:
      return error.message ?? error.keyword;
  }
}

/** The description of the closest schema node enclosing `schemaPath` (e.g. a definition). */
function nearestDescription(schemaId: string, schemaPath: string): string | undefined {
  const known = validators.schemaDescriptions[schemaId] ?? {};
  const parts = schemaPath.split("/");
  // Not up to the root ("#"): inside a $ref the path is relative to the definition, and the
  // root's description (the whole plugin's) would explain nothing about one field.
  for (let end = parts.length - 1; end > 1; end--) {
    const description = known[parts.slice(0, end).join("/")];
    if (description !== undefined) return description;
  }
  return undefined;
}

function firstSentence(text: string): string {
  return text.split(/(?<=\.)\s/)[0] ?? text;
}

/** A key as one segment of a JSON pointer (RFC 6901). */
export function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
