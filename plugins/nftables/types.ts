/**
 * The models `diff` compares. Both sides come from nft's own JSON listing (the live host, and
 * the file's tables loaded into a throw-away namespace), so equal rules look equal however
 * they were written. Handles and counters are left out of what is compared.
 */
import type { NftTableSpec } from "../../src/generated/nftables.js";
import type { Action, Adoption, Kind } from "../../src/plugin.js";

export type { NftablesSection, NftTableSpec } from "../../src/generated/nftables.js";

/** A live rule as nft lists it. */
export interface NftRule {
  /** nft's JSON statements of the rule. */
  expr: unknown[];
  comment?: string;
  /** nft's handle, to find the rule's rendered text. Not compared. */
  handle?: number;
}

/** A rule of the file, after nft printed it back. */
export interface DesiredRule {
  /** What is compared: nft's statements and comment as text (see `ruleKey`). */
  key: string;
  /** The rule as the file writes it, for display. */
  text: string;
}

export interface NftChain<Rule = NftRule> {
  name: string;
  /** What nft reports besides name and handle: type, hook, priority, policy (base chains). */
  props: Record<string, unknown>;
  rules: Rule[];
}

export interface NftSet {
  name: string;
  /** What nft reports besides name, handle and elements: type, flags, map, comment... */
  props: Record<string, unknown>;
  /** nft's JSON elements. Absent in a desired set whose elements are not compared (dynamic). */
  elements?: unknown[];
}

export interface NftTable<Rule = NftRule> {
  family: string;
  name: string;
  /** What nft reports besides family, name and handle (e.g. flags). */
  props: Record<string, unknown>;
  chains: NftChain<Rule>[];
  sets: NftSet[];
  maps: NftSet[];
  /** Objects op does not model (flowtables, named counters...), as "kind name". */
  objects: string[];
}

export interface NftLive {
  /** nft's version, from the listing's metainfo (part of the normalisation cache key). */
  version: string;
  tables: NftTable[];
}

interface DesiredBase {
  /** `family/name`. */
  id: string;
  /** The table as the file gives it: what apply writes. */
  spec: NftTableSpec;
  /** Rendered nft text of live rules the file does not have, by handle (display only). */
  liveTexts: Record<string, string>;
  /** Set when the table is on the host without op's mark and the plan would change or delete it. */
  foreign?: Adoption;
}

export type DesiredTable =
  | (DesiredBase & { ensure: "present"; table: NftTable<DesiredRule> })
  | (DesiredBase & { ensure: "absent" });

export interface NftDesired {
  tables: DesiredTable[];
}

export function tableId(table: { family: string; name: string }): string {
  return `${table.family}/${table.name}`;
}

/** A live table as an action's `before` shows it: its name, properties and rule texts. */
export type LiveTableView = { family: string; name: string } & Record<string, unknown>;

/**
 * The nftables plugin's one resource kind (src/plugin.ts): a table (id: `family/name`),
 * replaced whole by one nft transaction.
 */
export type NftKinds = { table: Kind<NftTableSpec, LiveTableView> };

/** An action of the nftables plugin. */
export type NftAction = Action<NftKinds>;
