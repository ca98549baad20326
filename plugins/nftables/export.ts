/**
 * `op export` for nftables: the tables as the file writes them, read from the text nft prints
 * (`nft -a -s list ruleset`), since that is the text nft parses back to the same table. The
 * JSON listing `query` reads lacks it (rule text, set flags such as `dynamic`, table comments,
 * hence op's ownership mark), so this reads the host once more.
 */
import type {
  NftChainSpec,
  NftMapSpec,
  NftSetSpec,
  NftTableSpec,
} from "../../src/generated/nftables.js";
import type { Ctx, ExportedSection } from "../../src/plugin.js";
import { nftFailed } from "./query.js";
import { ownerComment } from "./script.js";

const listArgs = ["-a", "-s", "list", "ruleset"];

export async function exportNftables(
  _live: unknown,
  options: { all: boolean },
  ctx: Ctx,
): Promise<ExportedSection> {
  const result = await ctx.exec.run("nft", listArgs, { check: false });
  if (result.exitCode !== 0)
    throw nftFailed(`nft ${listArgs.join(" ")}`, result.stderr || result.stdout);
  return exportFromListing(result.stdout, options);
}

/** A table of the listing, and whether it carries op's mark. */
interface ListedTable {
  spec: NftTableSpec;
  owned: boolean;
}

/** Pure: the section from nft's text listing. */
export function exportFromListing(listing: string, options: { all: boolean }): ExportedSection {
  const notes: string[] = [];
  const tables = parseListing(listing, notes)
    .filter((table) => options.all || table.owned)
    .map((table) => table.spec);
  return { section: tables.length === 0 ? undefined : { tables }, notes };
}

/** One statement per entry: nft's wrapped lines joined, `# handle N` dropped. */
function statements(listing: string): string[] {
  const out: string[] = [];
  let pending = "";
  for (const raw of listing.split("\n")) {
    const line = raw.replace(/\s+# handle \d+$/, "").trim();
    if (line === "") continue;
    pending = pending === "" ? line : `${pending} ${line}`;
    // A statement ends when its braces balance (outside quotes), or when it opens a block.
    if (depthOf(pending) <= 0 || /\{$/.test(pending)) {
      out.push(pending);
      pending = "";
    }
  }
  if (pending !== "") out.push(pending);
  return out;
}

/** Open braces minus closed ones, outside double quotes. */
function depthOf(text: string): number {
  let depth = 0;
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && char === "{") depth++;
    else if (!quoted && char === "}") depth--;
  }
  return depth;
}

type Block =
  | { kind: "table"; table: ListedTable }
  | { kind: "chain"; chain: NftChainSpec }
  | { kind: "set"; set: NftSetSpec }
  | { kind: "map"; map: NftMapSpec }
  | { kind: "other"; what: string };

function parseListing(listing: string, notes: string[]): ListedTable[] {
  const tables: ListedTable[] = [];
  const stack: Block[] = [];
  for (const line of statements(listing)) {
    const top = stack[stack.length - 1];
    if (line === "}") {
      stack.pop();
      continue;
    }
    const opened =
      /^(table|chain|set|map|flowtable|counter|quota|limit|ct \S+|secmark|synproxy) (.+?) \{$/.exec(
        line,
      );
    if (opened) {
      const [, kind, rest] = opened as unknown as [string, string, string];
      if (kind === "table") {
        const [family, name] = rest.split(" ") as [NftTableSpec["family"], string];
        const table: ListedTable = { spec: { family, name }, owned: false };
        tables.push(table);
        stack.push({ kind: "table", table });
      } else if (top?.kind === "table" && (kind === "chain" || kind === "set" || kind === "map")) {
        const spec = top.table.spec;
        if (kind === "chain") {
          const chain: NftChainSpec = { name: rest };
          spec.chains = [...(spec.chains ?? []), chain];
          stack.push({ kind: "chain", chain });
        } else if (kind === "set") {
          const set: NftSetSpec = { name: rest, type: "" };
          spec.sets = [...(spec.sets ?? []), set];
          stack.push({ kind: "set", set });
        } else {
          const map: NftMapSpec = { name: rest, type: "", map: "" };
          spec.maps = [...(spec.maps ?? []), map];
          stack.push({ kind: "map", map });
        }
      } else {
        const where = top?.kind === "table" ? ` in table ${tableName(top.table)}` : "";
        notes.push(`${kind} ${rest}${where}: op's format has no ${kind}s; left out`);
        stack.push({ kind: "other", what: kind });
      }
      continue;
    }
    if (top === undefined || top.kind === "other") continue;
    if (top.kind === "table") tableLine(top.table, line, notes);
    else if (top.kind === "chain") chainLine(top.chain, line);
    else if (top.kind === "set") setLine(top.set, line, notes);
    else mapLine(top.map, line, notes);
  }
  for (const { spec } of tables) dropDynamicElements(spec);
  return tables;
}

function tableName(table: ListedTable): string {
  return `${table.spec.family}/${table.spec.name}`;
}

function tableLine(table: ListedTable, line: string, notes: string[]): void {
  if (line === `comment "${ownerComment}"`) table.owned = true;
  else notes.push(`table ${tableName(table)}: "${line}" is not in op's format; left out`);
}

function chainLine(chain: NftChainSpec, line: string): void {
  const base =
    /^type (\S+) hook (\S+)(?: device "?([^";\s]+)"?)? priority ([^;]+);(?: policy (\S+);)?$/.exec(
      line,
    );
  if (base) {
    const [, type, hook, device, priority, policy] = base;
    const prio = (priority as string).trim();
    Object.assign(chain, {
      type,
      hook,
      priority: /^-?\d+$/.test(prio) ? Number(prio) : prio,
      ...(policy === undefined ? {} : { policy }),
      ...(device === undefined ? {} : { device }),
    });
    return;
  }
  const comment = /^comment "(.*)"$/.exec(line);
  if (comment) {
    chain.comment = comment[1] as string;
    return;
  }
  chain.rules = [...(chain.rules ?? []), line];
}

/** The lines sets and maps share; false when the line is not one of them. */
function commonSetLine(set: NftSetSpec | NftMapSpec, line: string): boolean {
  const [word, ...rest] = line.split(" ");
  const value = rest.join(" ");
  switch (word) {
    case "flags":
      set.flags = value.split(",") as NftSetSpec["flags"];
      return true;
    case "timeout":
      set.timeout = value;
      return true;
    case "size":
      set.size = Number(value);
      return true;
    case "auto-merge":
      set.autoMerge = true;
      return true;
    case "comment":
      set.comment = value.replace(/^"(.*)"$/, "$1");
      return true;
    default:
      return false;
  }
}

function setLine(set: NftSetSpec, line: string, notes: string[]): void {
  if (/^(type|typeof) /.test(line)) set.type = line.startsWith("typeof ") ? line : line.slice(5);
  else if (line.startsWith("elements = ")) set.elements = elementsOf(line);
  else if (!commonSetLine(set, line)) notes.push(`set ${set.name}: "${line}" left out`);
}

function mapLine(map: NftMapSpec, line: string, notes: string[]): void {
  const typed = /^(type|typeof) (.+) : (.+)$/.exec(line);
  if (typed) {
    const [, word, key, value] = typed as unknown as [string, string, string, string];
    map.type = word === "typeof" ? `typeof ${key}` : key;
    map.map = value;
  } else if (line.startsWith("elements = ")) {
    map.elements = elementsOf(line).map((element) => {
      const [key, value] = splitTop(element, " : ");
      return [key ?? element, value ?? ""] as [string, string];
    });
  } else if (!commonSetLine(map, line)) notes.push(`map ${map.name}: "${line}" left out`);
}

/** `elements = { a, b }` → its elements as written. */
function elementsOf(line: string): string[] {
  const body = line.replace(/^elements = \{\s*/, "").replace(/\s*\}$/, "");
  return splitTop(body, ",").map((element) => element.trim());
}

/** Splits at `separator` outside quotes and braces. */
function splitTop(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') quoted = !quoted;
    else if (!quoted && char === "{") depth++;
    else if (!quoted && char === "}") depth--;
    else if (!quoted && depth === 0 && text.startsWith(separator, i)) {
      parts.push(text.slice(start, i));
      start = i + separator.length;
      i += separator.length - 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A dynamic set's elements are the rules' to fill: op never compares them. */
function dropDynamicElements(spec: NftTableSpec): void {
  for (const set of [...(spec.sets ?? []), ...(spec.maps ?? [])]) {
    if (set.flags?.includes("dynamic")) delete set.elements;
  }
}
