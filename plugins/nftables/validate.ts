/**
 * Checks of the nftables section beyond its schema. Every string op writes into an nft script
 * is checked here in code too, so a rule cannot smuggle a second command into the generated
 * script (the schema is the first gate; this is the one script generation relies on).
 */
import { OpError } from "../../src/errors.js";
import { validate_nftables } from "../../src/generated/validators.js";
import { type Problem, problemLine } from "../../src/problems.js";
import { describeErrors } from "../../src/state/validate.js";
import type { NftablesSection, NftTableSpec } from "./types.js";

/** Where the section sits in a state file, for the JSON paths of problems. */
export const sectionPath = "/plugins/nftables";

const families = ["inet", "ip", "ip6", "arp", "bridge", "netdev"];
const chainTypes = ["filter", "nat", "route"];
const hooks = ["prerouting", "input", "forward", "output", "postrouting", "ingress", "egress"];
const policies = ["accept", "drop"];
const setFlags = ["constant", "interval", "timeout", "dynamic"];
const identifier = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const device = /^[A-Za-z0-9_.-]{1,15}$/;
const dataType = /^[A-Za-z0-9_]+(?: [A-Za-z0-9_.]+)*$/;
const namedPriority = /^(?:raw|mangle|dstnat|filter|security|srcnat|out)(?: ?[-+] ?[0-9]{1,9})?$/;
const duration = /^(?:[0-9]{1,9}(?:ms|d|h|m|s))+$/;
const maxBraceDepth = 3;

/**
 * Why `text` is not exactly one nft rule, or undefined when it is. Scans like nft's lexer:
 * inside double quotes anything but a control character goes; outside, a newline, `;`, `#`
 * (comment to end of line) or an unbalanced brace could end the rule or the chain early.
 */
export function ruleProblem(text: string): string | undefined {
  if (!/\S/.test(text)) return "is empty";
  if (/^\s*(?:include|define|redefine|undefine)\b/.test(text)) {
    return "may not start with include, define, redefine or undefine";
  }
  return scan(text, { braces: true });
}

/** Why `text` is not exactly one set element (or map key/value), or undefined when it is. */
export function elementProblem(text: string): string | undefined {
  if (!/\S/.test(text)) return "is empty";
  return scan(text, { braces: false });
}

/**
 * Fast paths (native regular expressions; the scan below only explains a refusal). A rule:
 * plain characters or quoted strings, in braces at most three deep. Same as the schema.
 */
const plainChar = '[^"#;{}\\\\\\u0000-\\u001f\\u007f]';
const quotedString = '"[^"\\u0000-\\u001f\\u007f]*"';
const atom = `(?:${plainChar}|${quotedString})`;
const nested = (depth: number): string =>
  depth === 0 ? `${atom}*` : `(?:${atom}|\\{${nested(depth - 1)}\\})*`;
const wellFormedRule = new RegExp(`^${nested(maxBraceDepth)}$`, "u");
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const wellFormedElement = /^(?:[^"#;{},\\\u0000-\u001f\u007f]|"[^"\u0000-\u001f\u007f]*")*$/u;

function scan(text: string, allow: { braces: boolean }): string | undefined {
  if ((allow.braces ? wellFormedRule : wellFormedElement).test(text)) return undefined;
  let depth = 0;
  let quoted = false;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === "\n" || char === "\r") return "contains a newline (one entry per line)";
    if (code < 0x20 || code === 0x7f) return "contains a control character";
    if (quoted) {
      if (char === '"') quoted = false;
      continue;
    }
    switch (char) {
      case '"':
        quoted = true;
        break;
      case ";":
        return "contains `;` outside quotes (one entry per item)";
      case "#":
        return "contains `#` outside quotes (nft would ignore the rest of the line)";
      case "\\":
        return "contains `\\` outside quotes";
      case ",":
        if (!allow.braces) return "contains `,` outside quotes (one element per item)";
        break;
      case "{":
        if (!allow.braces) return "contains `{` outside quotes";
        depth++;
        if (depth > maxBraceDepth) return `nests braces deeper than ${maxBraceDepth}`;
        break;
      case "}":
        if (!allow.braces) return "contains `}` outside quotes";
        depth--;
        if (depth < 0) return "has a `}` without its `{`";
        break;
    }
  }
  if (quoted) return 'has an unclosed `"`';
  if (depth > 0) return "has a `{` without its `}`";
  return undefined;
}

function commentProblem(text: string): string | undefined {
  if (text.length > 128) return "is longer than 128 characters";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/["\u0000-\u001f\u007f]/.test(text))
    return 'may not contain `"`, a newline or a control character';
  return undefined;
}

type Check = (value: unknown) => string | undefined;

const oneOf =
  (allowed: readonly string[]): Check =>
  (value) =>
    typeof value === "string" && allowed.includes(value)
      ? undefined
      : `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`;
const matching =
  (pattern: RegExp, what: string): Check =>
  (value) =>
    typeof value === "string" && pattern.test(value) ? undefined : `must be ${what}`;
const text =
  (problem: (value: string) => string | undefined): Check =>
  (value) =>
    typeof value === "string" ? problem(value) : "must be a string";

const checks = {
  family: oneOf(families),
  ensure: oneOf(["present", "absent"]),
  name: matching(
    identifier,
    "an nft identifier (a letter or `_`, then letters, digits, `_`, `-`, `.`)",
  ),
  type: oneOf(chainTypes),
  hook: oneOf(hooks),
  policy: oneOf(policies),
  device: matching(device, "an interface name (at most 15 letters, digits, `_`, `-`, `.`)"),
  comment: text(commentProblem),
  rule: text(ruleProblem),
  element: text(elementProblem),
  dataType: matching(dataType, "an nft data type such as ipv4_addr or `ipv4_addr . inet_service`"),
  priority: (value: unknown) =>
    (typeof value === "number" && Number.isInteger(value)) ||
    (typeof value === "string" && namedPriority.test(value))
      ? undefined
      : "must be an integer or a priority name such as filter, dstnat or `filter + 10`",
  flag: oneOf(setFlags),
  timeout: matching(duration, "a duration such as 1h, 30m or 1d12h"),
  size: (value: unknown) =>
    typeof value === "number" && Number.isInteger(value) && value > 0
      ? undefined
      : "must be a positive integer",
  boolean: (value: unknown) => (typeof value === "boolean" ? undefined : "must be true or false"),
} satisfies Record<string, Check>;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Every problem with one table that could reach an nft script, each with its JSON path:
 * every string op writes, the shapes it walks, and duplicate names. This alone is what
 * script generation relies on; the schema adds unknown fields and the rest.
 */
export function tableProblems(spec: unknown, path: string): Problem[] {
  const problems: Problem[] = [];
  const check = (value: unknown, field: string, at: string, optional = true): void => {
    if (value === undefined && optional) return;
    const message = (checks as Record<string, Check>)[field]?.(value);
    if (message !== undefined) problems.push({ path: at, message });
  };
  const objectAt = (value: unknown, at: string): Record<string, unknown> => {
    if (isObject(value)) return value;
    problems.push({ path: at, message: "must be an object" });
    return {};
  };
  const listAt = (value: unknown, at: string): unknown[] => {
    if (value === undefined || Array.isArray(value)) return value ?? [];
    problems.push({ path: at, message: "must be an array" });
    return [];
  };
  const table = objectAt(spec, path);
  check(table.family, "family", `${path}/family`, false);
  check(table.name, "name", `${path}/name`, false);
  check(table.ensure, "ensure", `${path}/ensure`);

  const chainNames = new Set<string>();
  listAt(table.chains, `${path}/chains`).forEach((raw, i) => {
    const at = `${path}/chains/${i}`;
    const chain = objectAt(raw, at);
    check(chain.name, "name", `${at}/name`, false);
    duplicate(chainNames, chain.name, `${at}/name`, "chain", problems);
    for (const field of ["type", "hook", "priority", "policy", "device", "comment"] as const) {
      check(chain[field], field, `${at}/${field}`);
    }
    const base = ["type", "hook", "priority"].filter((f) => chain[f] !== undefined);
    if (base.length > 0 && base.length < 3) {
      problems.push({
        path: at,
        message: `a base chain needs type, hook and priority together (only ${base.join(", ")} given)`,
      });
    }
    if (base.length === 0 && (chain.policy !== undefined || chain.device !== undefined)) {
      problems.push({
        path: at,
        message: "policy and device need a base chain (type, hook and priority)",
      });
    }
    listAt(chain.rules, `${at}/rules`).forEach((rule, j) => {
      check(rule, "rule", `${at}/rules/${j}`, false);
    });
  });

  const setNames = new Set<string>();
  for (const kind of ["sets", "maps"] as const) {
    listAt(table[kind], `${path}/${kind}`).forEach((raw, i) => {
      const at = `${path}/${kind}/${i}`;
      const set = objectAt(raw, at);
      check(set.name, "name", `${at}/name`, false);
      duplicate(setNames, set.name, `${at}/name`, "set or map", problems);
      check(set.type, "dataType", `${at}/type`, false);
      if (kind === "maps") check(set.map, "dataType", `${at}/map`, false);
      check(set.timeout, "timeout", `${at}/timeout`);
      check(set.size, "size", `${at}/size`);
      check(set.autoMerge, "boolean", `${at}/autoMerge`);
      check(set.comment, "comment", `${at}/comment`);
      listAt(set.flags, `${at}/flags`).forEach((flag, j) => {
        check(flag, "flag", `${at}/flags/${j}`, false);
      });
      listAt(set.elements, `${at}/elements`).forEach((element, j) => {
        if (kind === "sets") {
          check(element, "element", `${at}/elements/${j}`, false);
          return;
        }
        const pair = Array.isArray(element) ? element : [];
        if (pair.length !== 2) {
          problems.push({ path: `${at}/elements/${j}`, message: "must be a [key, value] pair" });
        }
        pair.forEach((part, k) => {
          check(part, "element", `${at}/elements/${j}/${k}`, false);
        });
      });
    });
  }
  return problems;
}

function duplicate(
  seen: Set<string>,
  name: unknown,
  at: string,
  what: string,
  problems: Problem[],
): void {
  if (typeof name !== "string") return;
  if (seen.has(name)) problems.push({ path: at, message: `${what} "${name}" is given twice` });
  seen.add(name);
}

/**
 * Schema problems (unless `schema` is false) and code-level problems together, one line per
 * path and problem.
 */
export function sectionProblems(section: unknown, prefix = sectionPath, schema = true): Problem[] {
  const codeProblems: Problem[] = [];
  const ids = new Set<string>();
  const tables = isObject(section) && Array.isArray(section.tables) ? section.tables : [];
  if (!isObject(section)) codeProblems.push({ path: prefix || "/", message: "must be an object" });
  else if (section.tables !== undefined && !Array.isArray(section.tables)) {
    codeProblems.push({ path: `${prefix}/tables`, message: "must be an array" });
  }
  tables.forEach((raw, i) => {
    const at = `${prefix}/tables/${i}`;
    codeProblems.push(...tableProblems(raw, at));
    const table = isObject(raw) ? raw : {};
    if (typeof table.family === "string" && typeof table.name === "string") {
      const id = `${table.family}/${table.name}`;
      if (ids.has(id)) codeProblems.push({ path: at, message: `table ${id} is given twice` });
      ids.add(id);
    }
  });
  const schemaProblems =
    !schema || validate_nftables(section)
      ? []
      : describeErrors(validate_nftables.errors ?? [], prefix);
  // The code's wording is clearer than a failed pattern; keep the schema's line only for paths
  // the code said nothing about (unknown fields, wrong types, missing fields...).
  const coveredPaths = new Set(codeProblems.map((problem) => problem.path));
  const extra = schemaProblems.filter((problem) => !coveredPaths.has(problem.path));
  const lines = new Set<string>();
  return [...extra, ...codeProblems].filter((problem) => {
    const line = problemLine(problem);
    if (lines.has(line)) return false;
    lines.add(line);
    return true;
  });
}

/**
 * The section, checked; throws `invalid-state` naming every problem with its JSON path.
 * `schema: false` skips the schema when the caller has applied it already (the engine does,
 * for the whole file); the code checks, which script generation relies on, always run.
 */
export function validateSection(section: unknown, options = { schema: true }): NftablesSection {
  const problems = sectionProblems(section ?? {}, sectionPath, options.schema);
  if (problems.length > 0) {
    throw new OpError("invalid-state", `the nftables section has ${count(problems.length)}`, {
      details: problems.map(problemLine),
      hint: "each line gives the JSON path of a problem; nothing was changed",
      context: { plugin: "nftables", phase: "prepare" },
    });
  }
  return (section ?? {}) as NftablesSection;
}

/**
 * One table (e.g. an action's `after`), checked against the schema and in code before any of
 * it is written into a script.
 */
export function assertSafeTable(spec: unknown, id: string): NftTableSpec {
  return refuseProblems(sectionProblems({ tables: [spec] }, ""), spec, id);
}

/** The code checks alone: what script generation needs to stay one command per entry. */
export function assertScriptable(spec: unknown, id: string): NftTableSpec {
  return refuseProblems(tableProblems(spec, "/tables/0"), spec, id);
}

function refuseProblems(problems: Problem[], spec: unknown, id: string): NftTableSpec {
  if (problems.length > 0) {
    throw new OpError(
      "invalid-state",
      `table ${id} cannot be written as an nft script (${count(problems.length)})`,
      {
        details: problems.map(problemLine),
        hint: "nothing was changed",
        context: { plugin: "nftables", id },
      },
    );
  }
  return spec as NftTableSpec;
}

function count(n: number): string {
  return n === 1 ? "1 problem" : `${n} problems`;
}
