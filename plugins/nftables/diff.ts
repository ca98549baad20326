/**
 * Pure comparison of the file's tables with the live ones. Only tables the file lists are
 * looked at; a table differs as a whole (it is replaced in one transaction), and `changes`
 * say in the file's terms what differs: rules added or removed (order matters), chain
 * properties, set elements, chains, sets and maps added or removed.
 */
import type { FieldChange } from "../../src/plugin.js";
import {
  type DesiredRule,
  type DesiredTable,
  type LiveTableView,
  type NftAction,
  type NftChain,
  type NftDesired,
  type NftLive,
  type NftRule,
  type NftSet,
  type NftTable,
  tableId,
} from "./types.js";

const plugin = "nftables";

/**
 * Comparison keys are nft's JSON as text. Both sides come from the same nft, which prints
 * object keys in a fixed order, so no canonical form is needed (and the plan stays fast).
 */
function keyOf(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

const ruleKeys = new WeakMap<NftRule, string>();

/** What makes two rules the same rule: nft's statements and the comment (not the handle). */
export function ruleKey(rule: NftRule): string {
  let key = ruleKeys.get(rule);
  if (key === undefined) {
    const plain = [rule.expr, rule.comment ?? null];
    key = JSON.stringify(plain);
    if (key.includes('"set":[') && byIndex.test(key))
      key = JSON.stringify(plain, sortAnonymousSets);
    ruleKeys.set(rule, key);
  }
  return key;
}

/** Interfaces matched by index: nft lists their anonymous sets in index order. */
const byIndex = /"key":"[io]if"/;

/**
 * Anonymous sets (`{ "set": [...] }`) with their elements in one order. nft lists elements
 * sorted by value, which for interfaces is their index: it differs between namespaces (the
 * throw-away one and the host) but means nothing.
 */
function sortAnonymousSets(key: string, value: unknown): unknown {
  if (key !== "set" || !Array.isArray(value) || value.length < 2) return value;
  return value
    .map((element) => [keyOf(element), element] as const)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([, element]) => element);
}

/** nft's JSON form of an element (or map pair) as nft syntax, for people. */
export function elementText(element: unknown): string {
  if (typeof element === "string" || typeof element === "number" || typeof element === "boolean") {
    return String(element);
  }
  if (Array.isArray(element)) return element.map(elementText).join(" : ");
  if (element !== null && typeof element === "object") {
    const entries = Object.entries(element as Record<string, unknown>);
    const [kind, value] = entries[0] ?? [];
    if (entries.length === 1 && kind !== undefined) {
      const v = value as Record<string, unknown> | unknown[] | null;
      if (v === null) return kind; // accept, drop, continue, return
      if (kind === "prefix" && !Array.isArray(v)) return `${elementText(v.addr)}/${String(v.len)}`;
      if (kind === "range" && Array.isArray(v)) return v.map(elementText).join("-");
      if (kind === "concat" && Array.isArray(v)) return v.map(elementText).join(" . ");
      if ((kind === "jump" || kind === "goto") && !Array.isArray(v))
        return `${kind} ${String(v.target)}`;
      if (kind === "elem" && !Array.isArray(v)) {
        const { val, ...options } = v;
        const extra = Object.entries(options).map(
          ([k, o]) => ` ${k} ${typeof o === "object" ? keyOf(o) : String(o)}`,
        );
        return `${elementText(val)}${extra.join("")}`;
      }
    }
  }
  return keyOf(element);
}

/** Texts for rules, preferring the file's wording, then nft's rendering, then nft's JSON. */
class RuleTexts {
  /** Built on first use: a converged plan needs no texts. */
  private byKey: Map<string, string> | undefined;

  constructor(
    private readonly desired: NftTable<DesiredRule> | undefined,
    private readonly liveTexts: Record<string, string>,
  ) {}

  of(rule: NftRule): string {
    const rendered = rule.handle === undefined ? undefined : this.liveTexts[String(rule.handle)];
    if (rendered !== undefined) return rendered;
    const fromFile = this.fileTexts().get(ruleKey(rule));
    if (fromFile !== undefined) return fromFile;
    const json = rule.expr.map((statement) => keyOf(statement)).join(" ");
    return rule.comment === undefined ? json : `${json} comment "${rule.comment}"`;
  }

  private fileTexts(): Map<string, string> {
    if (this.byKey === undefined) {
      this.byKey = new Map();
      for (const rule of this.desired?.chains.flatMap((chain) => chain.rules) ?? []) {
        if (!this.byKey.has(rule.key)) this.byKey.set(rule.key, rule.text);
      }
    }
    return this.byKey;
  }
}

export function diffNftables(desired: NftDesired, live: NftLive): NftAction[] {
  const liveById = new Map(live.tables.map((table) => [tableId(table), table]));
  const actions: NftAction[] = [];
  const resource = "table";
  for (const want of desired.tables) {
    const have = liveById.get(want.id);
    if (want.ensure === "absent") {
      if (have) {
        const texts = new RuleTexts(undefined, want.liveTexts);
        actions.push({
          kind: "delete",
          plugin,
          resource,
          id: want.id,
          before: liveView(have, texts),
          reason: want.foreign ? "ensure: absent (made outside op)" : "ensure: absent",
          ...(want.foreign === undefined ? {} : { adopt: want.foreign }),
        });
      }
      continue;
    }
    if (!have) {
      actions.push({
        kind: "create",
        plugin,
        resource,
        id: want.id,
        after: want.spec,
        reason: "not on host",
      });
      continue;
    }
    const texts = new RuleTexts(want.table, want.liveTexts);
    const changes = tableChanges(want, have, texts);
    if (changes.length > 0) {
      actions.push({
        kind: "modify",
        plugin,
        resource,
        id: want.id,
        before: liveView(have, texts),
        after: want.spec,
        changes,
        reason: want.foreign ? "made outside op: replaced by the file's" : "differs from file",
        ...(want.foreign === undefined ? {} : { adopt: want.foreign }),
      });
    }
  }
  return actions;
}

function tableChanges(
  want: DesiredTable & { ensure: "present" },
  have: NftTable,
  texts: RuleTexts,
): FieldChange[] {
  const changes = propChanges("", want.table.props, have.props);
  changes.push(
    ...named("chains", "chain", want.table.chains, have.chains, (path, a, b) =>
      chainChanges(path, a, b, texts),
    ),
  );
  changes.push(...named("sets", "set", want.table.sets, have.sets, setChanges));
  changes.push(...named("maps", "map", want.table.maps, have.maps, setChanges));
  for (const object of have.objects) changes.push({ path: "objects", before: object });
  return changes;
}

/** Objects matched by name: added, removed, and the changes of those on both sides. */
function named<W extends { name: string }, H extends { name: string }>(
  listPath: string,
  kind: string,
  wanted: readonly W[],
  existing: readonly H[],
  compare: (path: string, want: W, have: H) => FieldChange[],
): FieldChange[] {
  const changes: FieldChange[] = [];
  const have = new Map(existing.map((item) => [item.name, item]));
  const want = new Set(wanted.map((item) => item.name));
  for (const item of wanted) {
    const match = have.get(item.name);
    if (match) changes.push(...compare(`${kind} ${item.name}/`, item, match));
    else changes.push({ path: listPath, after: item.name });
  }
  for (const item of existing)
    if (!want.has(item.name)) changes.push({ path: listPath, before: item.name });
  return changes;
}

function propChanges(
  prefix: string,
  want: Record<string, unknown>,
  have: Record<string, unknown>,
): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const key of new Set([...Object.keys(want), ...Object.keys(have)])) {
    const a = want[key];
    const b = have[key];
    if (keyOf(a ?? null) === keyOf(b ?? null)) continue;
    changes.push({
      path: `${prefix}${key}`,
      ...(b === undefined ? {} : { before: b }),
      ...(a === undefined ? {} : { after: a }),
    });
  }
  return changes;
}

function chainChanges(
  prefix: string,
  want: NftChain<DesiredRule>,
  have: NftChain,
  texts: RuleTexts,
): FieldChange[] {
  const changes = propChanges(prefix, want.props, have.props);
  const wantKeys = want.rules.map((rule) => rule.key);
  const haveKeys = have.rules.map(ruleKey);
  for (const step of editScript(haveKeys, wantKeys)) {
    if (step.op === "remove") {
      changes.push({ path: `${prefix}rules`, before: texts.of(have.rules[step.index] as NftRule) });
    } else {
      changes.push({ path: `${prefix}rules`, after: (want.rules[step.index] as DesiredRule).text });
    }
  }
  return changes;
}

function setChanges(prefix: string, want: NftSet, have: NftSet): FieldChange[] {
  const changes = propChanges(prefix, want.props, have.props);
  // A desired set without elements does not manage them (filled by rules).
  if (want.elements === undefined) return changes;
  const haveKeys = new Map((have.elements ?? []).map((e) => [keyOf(e), e]));
  const wantKeys = new Map(want.elements.map((e) => [keyOf(e), e]));
  const sorted = (m: Map<string, unknown>) =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, element] of sorted(haveKeys)) {
    if (!wantKeys.has(key))
      changes.push({ path: `${prefix}elements`, before: elementText(element) });
  }
  for (const [key, element] of sorted(wantKeys)) {
    if (!haveKeys.has(key))
      changes.push({ path: `${prefix}elements`, after: elementText(element) });
  }
  return changes;
}

type Step = { op: "remove" | "add"; index: number };

/** Cells of the LCS table above which a changed middle is shown as removed then added. */
const maxLcsCells = 4_000_000;

/**
 * The removals (indexes into `before`) and additions (into `after`) that turn one sequence
 * into the other, in sequence order, keeping a longest common subsequence.
 */
export function editScript(before: readonly string[], after: readonly string[]): Step[] {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endB = before.length;
  let endA = after.length;
  while (endB > start && endA > start && before[endB - 1] === after[endA - 1]) {
    endB--;
    endA--;
  }
  const n = endB - start;
  const m = endA - start;
  const steps: Step[] = [];
  if (n === 0 && m === 0) return steps;
  if (n * m > maxLcsCells) {
    for (let i = start; i < endB; i++) steps.push({ op: "remove", index: i });
    for (let j = start; j < endA; j++) steps.push({ op: "add", index: j });
    return steps;
  }
  // lcs[i][j]: LCS length of before[start+i..endB) and after[start+j..endA).
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        before[start + i] === after[start + j]
          ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1
          : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[start + i] === after[start + j]) {
      i++;
      j++;
    } else if (
      i < n &&
      (j === m || (lcs[(i + 1) * width + j] ?? 0) >= (lcs[i * width + j + 1] ?? 0))
    ) {
      steps.push({ op: "remove", index: start + i++ });
    } else {
      steps.push({ op: "add", index: start + j++ });
    }
  }
  return steps;
}

/** A live table in the shape of the file (rules and elements as text), for plans and the ledger. */
function liveView(table: NftTable, texts: RuleTexts): LiveTableView {
  const sets = (list: NftSet[]) =>
    list.map((set) => ({
      name: set.name,
      ...set.props,
      elements: (set.elements ?? []).map(elementText),
    }));
  return {
    family: table.family,
    name: table.name,
    ...table.props,
    chains: table.chains.map((chain) => ({
      name: chain.name,
      ...chain.props,
      rules: chain.rules.map((rule) => texts.of(rule)),
    })),
    sets: sets(table.sets),
    maps: sets(table.maps),
    ...(table.objects.length > 0 ? { objects: table.objects } : {}),
  };
}
