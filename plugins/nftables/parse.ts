/**
 * nft's JSON listing (`nft -j -s list ruleset`) to the model `diff` compares, and back (to
 * load a live table into a throw-away namespace). Handles and the stateful parts of elements
 * are left out of what is compared.
 */
import { OpError } from "../../src/errors.js";
import { type NftChain, type NftLive, type NftSet, type NftTable, tableId } from "./types.js";

type Json = Record<string, unknown>;

/** nft JSON field names that the file spells differently. */
const renamed: Record<string, string> = { prio: "priority", dev: "device" };
const renamedBack: Record<string, string> = Object.fromEntries(
  Object.entries(renamed).map(([k, v]) => [v, k]),
);

/** Named objects op does not model; a table holding one differs from the file. */
const otherKinds = [
  "flowtable",
  "counter",
  "quota",
  "ct helper",
  "ct timeout",
  "ct expectation",
  "limit",
  "secmark",
  "synproxy",
];

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function without(object: Json, keys: readonly string[]): Json {
  const props: Json = {};
  for (const [key, value] of Object.entries(object)) {
    if (!keys.includes(key)) props[renamed[key] ?? key] = value;
  }
  return props;
}

/** An element without what changes by itself (a timeout's time left). */
function stripElementState(element: unknown): unknown {
  if (Array.isArray(element)) return element.map(stripElementState);
  if (isObject(element) && isObject(element.elem)) {
    const { expires: _expires, ...rest } = element.elem;
    return { elem: rest };
  }
  return element;
}

/** Parses nft's JSON listing; `source` names the command in errors. */
export function parseRuleset(json: string, source: string): NftLive {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch {
    throw new OpError("command-failed", `${source} did not print JSON`, {
      hint: "op reads nft's JSON output (nftables 0.9.3 or later)",
    });
  }
  const items =
    isObject(document) && Array.isArray(document.nftables) ? document.nftables : undefined;
  if (items === undefined) {
    throw new OpError("command-failed", `${source} printed JSON without an "nftables" list`);
  }

  let version = "unknown";
  const tables = new Map<string, NftTable>();
  const chains = new Map<string, NftChain>();
  const tableOf = (object: Json): NftTable | undefined =>
    tables.get(tableId({ family: String(object.family), name: String(object.table) }));

  for (const item of items) {
    if (!isObject(item)) continue;
    const [kind, raw] = Object.entries(item)[0] ?? [];
    if (kind === undefined || !isObject(raw)) continue;
    switch (kind) {
      case "metainfo":
        version = String(raw.version ?? version);
        break;
      case "table": {
        const table: NftTable = {
          family: String(raw.family),
          name: String(raw.name),
          props: without(raw, ["family", "name", "handle"]),
          chains: [],
          sets: [],
          maps: [],
          objects: [],
        };
        tables.set(tableId(table), table);
        break;
      }
      case "chain": {
        const table = tableOf(raw);
        if (!table) break;
        const chain: NftChain = {
          name: String(raw.name),
          props: without(raw, ["family", "table", "name", "handle"]),
          rules: [],
        };
        table.chains.push(chain);
        chains.set(`${tableId(table)}/${chain.name}`, chain);
        break;
      }
      case "rule": {
        const chain = chains.get(`${raw.family}/${raw.table}/${raw.chain}`);
        if (!chain) break;
        chain.rules.push({
          expr: Array.isArray(raw.expr) ? raw.expr : [],
          ...(typeof raw.comment === "string" ? { comment: raw.comment } : {}),
          ...(typeof raw.handle === "number" ? { handle: raw.handle } : {}),
        });
        break;
      }
      case "set":
      case "map": {
        const table = tableOf(raw);
        if (!table) break;
        const set: NftSet = {
          name: String(raw.name),
          props: without(raw, ["family", "table", "name", "handle", "elem"]),
          elements: (Array.isArray(raw.elem) ? raw.elem : []).map(stripElementState),
        };
        (kind === "set" ? table.sets : table.maps).push(set);
        break;
      }
      default:
        if (otherKinds.includes(kind)) tableOf(raw)?.objects.push(`${kind} ${String(raw.name)}`);
    }
  }
  return { version, tables: [...tables.values()] };
}

function withFileNames(props: Json): Json {
  return Object.fromEntries(
    Object.entries(props).map(([key, value]) => [renamedBack[key] ?? key, value]),
  );
}

/**
 * A table as nft JSON input that loads it into an empty namespace: chains before sets and
 * maps (verdict maps may jump to them), rules last. Objects op does not model are left out.
 */
export function tableToNftJson(table: NftTable): Json[] {
  const { family, name } = table;
  const at = { family, table: name };
  return [
    { table: { family, name, ...table.props } },
    ...table.chains.map((chain) => ({
      chain: { ...at, name: chain.name, ...withFileNames(chain.props) },
    })),
    ...table.sets.map((set) => ({
      set: { ...at, name: set.name, ...set.props, elem: set.elements ?? [] },
    })),
    ...table.maps.map((map) => ({
      map: { ...at, name: map.name, ...map.props, elem: map.elements ?? [] },
    })),
    ...table.chains.flatMap((chain) =>
      chain.rules.map((rule) => ({
        rule: {
          ...at,
          chain: chain.name,
          expr: rule.expr,
          ...(rule.comment === undefined ? {} : { comment: rule.comment }),
        },
      })),
    ),
  ];
}
