/**
 * nft scripts generated from the file, one block or statement per line, each line remembering
 * which table, chain, set, rule or element it came from, so nft's `/dev/stdin:LINE:COL` errors
 * can be told back in the file's terms.
 */
import type { NftChainSpec, NftMapSpec, NftSetSpec } from "../../src/generated/nftables.js";
import { type NftTableSpec, tableId } from "./types.js";
import { assertScriptable } from "./validate.js";

/** Written on every table op creates: how op knows a table is its own. */
export const ownerComment = "managed by op";

/** Why op leaves a table alone: it lacks op's mark and the file does not adopt it. */
export function notOwned(id: string, verb: "replace" | "delete"): string {
  return `table ${id} exists and was not created by op (it lacks comment "${ownerComment}"), so op will not ${verb} it`;
}

/**
 * Whether `nft list table` text shows op's mark on the table itself. Only the table's own
 * attribute lines count (one tab deep, before its first chain, set or map): a foreign table
 * whose rule, chain or set carries the same comment is still foreign.
 */
export function carriesOwnerMark(listing: string): boolean {
  const lines = listing.split("\n");
  const header = lines.findIndex((line) => /^table \S+ \S+ \{$/.test(line));
  if (header < 0) return false;
  for (const line of lines.slice(header + 1)) {
    if (line === "" || line.endsWith("{") || !/^\t\S/.test(line)) return false;
    if (line === `\tcomment "${ownerComment}"`) return true;
  }
  return false;
}

interface Span {
  /** 1-based columns of one element within its line, inclusive. */
  start: number;
  end: number;
  text: string;
}

export interface Origin {
  table: string;
  chain?: string;
  set?: { kind: "set" | "map"; name: string };
  rule?: string;
  element?: string;
  /** Elements written on this line, to find the one an error column points at. */
  spans?: Span[];
}

export interface Script {
  text: string;
  /** The origin of each line (index 0 is line 1). */
  origins: Array<Origin | undefined>;
}

class ScriptBuilder {
  private readonly lines: string[] = [];
  private readonly origins: Array<Origin | undefined> = [];

  add(text: string, origin: Origin): void {
    this.lines.push(text);
    this.origins.push(origin);
  }

  build(): Script {
    return { text: `${this.lines.join("\n")}\n`, origins: this.origins };
  }
}

/** The file's tables as bare definitions (for an empty, throw-away namespace). */
export function definitionScript(specs: readonly NftTableSpec[]): Script {
  const builder = new ScriptBuilder();
  for (const spec of specs) writeTable(builder, assertScriptable(spec, tableId(spec)));
  return builder.build();
}

/**
 * One atomic transaction that replaces a whole table: `add` makes the `delete` valid when the
 * table does not exist yet (nft 1.0.6 has no `destroy`), then the full definition follows.
 */
export function replaceScript(spec: NftTableSpec): Script {
  const safe = assertScriptable(spec, tableId(spec));
  const builder = new ScriptBuilder();
  writeRemoval(builder, safe);
  writeTable(builder, safe);
  return builder.build();
}

/** One atomic transaction that deletes a table whether or not it exists. */
export function deleteScript(table: { family: string; name: string }): Script {
  const safe = assertScriptable({ family: table.family, name: table.name }, tableId(table));
  const builder = new ScriptBuilder();
  writeRemoval(builder, safe);
  return builder.build();
}

function writeRemoval(builder: ScriptBuilder, spec: NftTableSpec): void {
  const origin = { table: tableId(spec) };
  builder.add(`add table ${spec.family} ${spec.name}`, origin);
  builder.add(`delete table ${spec.family} ${spec.name}`, origin);
}

function writeTable(builder: ScriptBuilder, spec: NftTableSpec): void {
  const table = tableId(spec);
  builder.add(`table ${spec.family} ${spec.name} {`, { table });
  builder.add(`  comment "${ownerComment}"`, { table });
  for (const set of spec.sets ?? []) writeSet(builder, table, "set", set);
  for (const map of spec.maps ?? []) writeSet(builder, table, "map", map);
  for (const chain of spec.chains ?? []) writeChain(builder, table, chain);
  builder.add("}", { table });
}

function writeSet(
  builder: ScriptBuilder,
  table: string,
  kind: "set" | "map",
  set: NftSetSpec | NftMapSpec,
): void {
  const origin: Origin = { table, set: { kind, name: set.name } };
  const mapTo = "map" in set ? ` : ${set.map}` : "";
  builder.add(`  ${kind} ${set.name} {`, origin);
  // `typeof EXPR` declares the type by example; anything else is a type name.
  builder.add(
    set.type.startsWith("typeof ") ? `    ${set.type}${mapTo}` : `    type ${set.type}${mapTo}`,
    origin,
  );
  if (set.flags?.length) builder.add(`    flags ${set.flags.join(", ")}`, origin);
  if (set.timeout !== undefined) builder.add(`    timeout ${set.timeout}`, origin);
  if (set.size !== undefined) builder.add(`    size ${set.size}`, origin);
  if (set.autoMerge) builder.add("    auto-merge", origin);
  if (set.comment !== undefined) builder.add(`    comment "${set.comment}"`, origin);
  const elements = (set.elements ?? []).map((e) => (Array.isArray(e) ? `${e[0]} : ${e[1]}` : e));
  if (elements.length > 0) {
    let line = "    elements = { ";
    const spans: Span[] = [];
    elements.forEach((element, i) => {
      if (i > 0) line += ", ";
      spans.push({ start: line.length + 1, end: line.length + element.length, text: element });
      line += element;
    });
    builder.add(`${line} }`, { ...origin, spans });
  }
  builder.add("  }", origin);
}

function writeChain(builder: ScriptBuilder, table: string, chain: NftChainSpec): void {
  const origin: Origin = { table, chain: chain.name };
  builder.add(`  chain ${chain.name} {`, origin);
  if (chain.comment !== undefined) builder.add(`    comment "${chain.comment}"`, origin);
  if (chain.type !== undefined) {
    const device = chain.device === undefined ? "" : ` device "${chain.device}"`;
    builder.add(
      `    type ${chain.type} hook ${chain.hook}${device} priority ${chain.priority}`,
      origin,
    );
    if (chain.policy !== undefined) builder.add(`    policy ${chain.policy}`, origin);
  }
  for (const rule of chain.rules ?? []) builder.add(`    ${rule}`, { ...origin, rule });
  builder.add("  }", origin);
}

/** One error nft reported, placed in the file's terms where its line says where. */
export interface NftProblem {
  message: string;
  origin?: Origin;
  line?: number;
}

const located = /^(?:\/dev\/stdin|-):(\d+):(\d+)(?:-\d+)?: Error: (.*)$/;

/** nft's errors for a script it was given on stdin, mapped back to what generated each line. */
export function locateErrors(stderr: string, script: Script): NftProblem[] {
  const problems: NftProblem[] = [];
  for (const raw of stderr.split("\n")) {
    const match = located.exec(raw.trim());
    if (!match) continue;
    const line = Number(match[1]);
    const column = Number(match[2]);
    const base = script.origins[line - 1];
    const element = base?.spans?.find((span) => column >= span.start && column <= span.end);
    const origin = base && {
      ...base,
      spans: undefined,
      ...(element ? { element: element.text } : {}),
    };
    problems.push({ message: match[3] ?? "", line, ...(origin ? { origin } : {}) });
  }
  if (problems.length === 0) {
    // Errors nft could not place (e.g. from the kernel for the batch as a whole).
    const text = stderr
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const error = text.find((l) => /Error: /.test(l));
    problems.push({
      message: (error ?? text[0] ?? "nft failed without a message").replace(/^.*?Error: /, ""),
    });
  }
  return problems;
}

/** `table inet/op_demo, chain input, rule "tcp dport 22 acept"`. */
export function describeOrigin(origin: Origin): string {
  const parts = [`table ${origin.table}`];
  if (origin.chain !== undefined) parts.push(`chain ${origin.chain}`);
  if (origin.set !== undefined) parts.push(`${origin.set.kind} ${origin.set.name}`);
  if (origin.rule !== undefined) parts.push(`rule "${origin.rule}"`);
  if (origin.element !== undefined) parts.push(`element "${origin.element}"`);
  return parts.join(", ");
}

export function describeProblem(problem: NftProblem): string {
  return problem.origin ? `${describeOrigin(problem.origin)}: ${problem.message}` : problem.message;
}
