/**
 * Hints from `nft -j monitor` (nftables 1.0.6 prints one JSON object a line, e.g.
 * `{"add": {"rule": {"family": "inet", "table": "op_demo", …}}}`): every object names its
 * table, and the nftables plugin's actions are one per table.
 */
import { filter, map, type Observable } from "rxjs";
import { followLines } from "../../exec.js";
import type { Hint, HintSource } from "../hint.js";
import { nftablesPlugin, type SourceIds } from "./ids.js";

const source = "nft";
const families = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
/** A table name as nft prints one: a letter, then letters, digits, `_`, `.`, `-`. */
const tableName = /^[A-Za-z][A-Za-z0-9_.-]{0,255}$/;

/** The hint one line of `nft -j monitor` gives, or undefined for a line it cannot read. */
export function nftMonitorHint(line: string, ids: SourceIds): Hint | undefined {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(event)) return undefined;
  const [verb] = Object.keys(event);
  const body = verb === undefined ? undefined : event[verb];
  if (!isObject(body)) return undefined;
  const [kind] = Object.keys(body);
  const object = kind === undefined ? undefined : body[kind];
  if (!isObject(object)) return undefined;
  // A table names itself in `name`; everything in a table names it in `table`.
  const table = kind === "table" ? object.name : object.table;
  const { family } = object;
  if (typeof family !== "string" || !families.has(family)) return undefined;
  if (typeof table !== "string" || !tableName.test(table)) return undefined;
  const id = ids.table(family, table);
  return { plugin: nftablesPlugin, id, source, what: `${verb} ${kind} in ${id}` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The `nft monitor` source, in the namespace `netns` when given. */
export function nftSource(ids: SourceIds, netns?: string): HintSource {
  return {
    name: source,
    plugins: [nftablesPlugin],
    hints(): Observable<Hint> {
      return followLines("nft", ["-j", "monitor"], netns === undefined ? {} : { netns }).pipe(
        map((line) => nftMonitorHint(line, ids)),
        filter((hint): hint is Hint => hint !== undefined),
      );
    },
  };
}
