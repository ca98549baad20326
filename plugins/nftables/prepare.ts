/**
 * The file's tables in the form nft itself prints them: loaded into a throw-away network
 * namespace and listed back as JSON, so `{22,80}` and `{ 22, 80 }` are the same rule. The
 * result is a pure function of nft's version, the kernel and the generated script, so it is
 * cached under `ctx.cacheDir`, each entry authenticated (src/cache.ts). Live rules the file
 * lacks are rendered as nft text (another throw-away load) so the plan can show them; `diff`
 * stays pure. No shell is involved: every step is one direct exec.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { openCache } from "../../src/cache.js";
import { OpError } from "../../src/errors.js";
import type { RunResult } from "../../src/exec.js";
import type { Ctx } from "../../src/plugin.js";
import { type Problem, problemLine } from "../../src/problems.js";
import { diffNftables, ruleKey } from "./diff.js";
import { parseRuleset, tableToNftJson } from "./parse.js";
import { nftFailed } from "./query.js";
import {
  carriesOwnerMark,
  definitionScript,
  describeProblem,
  locateErrors,
  type NftProblem,
  type Origin,
  type Script,
} from "./script.js";
import {
  type DesiredRule,
  type DesiredTable,
  type NftDesired,
  type NftLive,
  type NftSet,
  type NftTable,
  type NftTableSpec,
  tableId,
} from "./types.js";
import { sectionPath, sectionProblems, validateSection } from "./validate.js";

/** Throw-away namespaces are named `op-nftcheck-<pid of the op that made it>-<random>`. */
const throwawayPrefix = "op-nftcheck-";

/**
 * Deletes throw-away namespaces left by an op that was killed before it could delete its own
 * (their pid is gone). Those of a running op are left alone.
 */
async function removeAbandonedNamespaces(ctx: Ctx): Promise<void> {
  const { sys } = ctx.host;
  for (const name of sys.list("/run/netns")) {
    const pid = Number(new RegExp(`^${throwawayPrefix}(\\d+)-`).exec(name)?.[1]);
    if (!Number.isInteger(pid) || sys.exists(`/proc/${pid}`)) continue;
    await ctx.exec.run("ip", ["netns", "del", name], { check: false });
  }
}

/** Runs nft, with its arguments and input, inside the throw-away namespace. */
type ThrowawayNft = (args: readonly string[], input?: string) => Promise<RunResult>;

/**
 * Runs `work` with a new, empty network namespace of its own, deleted afterwards. Named (in
 * /run/netns, like `ip netns add`) so that several direct execs share it: no shell is needed
 * to chain them. The interfaces given are created in it first, as veths, so nft can resolve
 * rules matching them by index (iif/oif); a failure is left for nft to report on the rule.
 */
async function withThrowawayNamespace<T>(
  interfaces: readonly string[],
  ctx: Ctx,
  work: (nft: ThrowawayNft) => Promise<T>,
): Promise<T> {
  await removeAbandonedNamespaces(ctx);
  const name = `${throwawayPrefix}${process.pid}-${randomBytes(4).toString("hex")}`;
  const added = await ctx.exec.run("ip", ["netns", "add", name], { check: false });
  if (added.exitCode !== 0) throw nftFailed(`ip netns add ${name}`, added.stderr);
  try {
    if (interfaces.length > 0) {
      // Peers are named op+N: `+` is in no name `interfaceNames` returns, so none collides.
      const lines = interfaces.map((dev, i) => `link add ${dev} type veth peer name op+${i + 1}`);
      await ctx.exec.run("ip", ["-n", name, "-force", "-batch", "-"], {
        input: `${lines.join("\n")}\n`,
        check: false,
      });
    }
    return await work((args, input) =>
      ctx.exec.run("nsenter", [`--net=/run/netns/${name}`, "nft", ...args], {
        ...(input === undefined ? {} : { input }),
        check: false,
      }),
    );
  } finally {
    await ctx.exec.run("ip", ["netns", "del", name], { check: false });
  }
}

/**
 * `content` in a new file of a new 0700 directory, removed afterwards. nft reads JSON input
 * only by path: its JSON parser opens /dev/stdin by name, which fails on the socket op's
 * commands get as standard input.
 */
async function withPrivateFile<T>(content: string, work: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "op-nft-"));
  try {
    const path = join(dir, "tables.json");
    await writeFile(path, content, { mode: 0o600, flag: "wx" });
    return await work(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** nsenter's exit code when it cannot find the program (util-linux's EX_EXEC_ENOENT). */
const programMissing = 127;

/** Bumped when the cached form or `ruleKey` changes meaning (stale keys would look like drift). */
const cacheFormat = "nftables-normalised-v2";
/** Entries kept (one per distinct set of tables); the least recently used go first. */
const cacheEntries = 32;

export async function prepareNftables(
  section: unknown,
  liveState: NftLive | Promise<NftLive>,
  ctx: Ctx,
): Promise<NftDesired> {
  // The engine validated the file against the schema; the code checks run again here, while
  // nft lists the ruleset.
  const specs = (validateSection(section, { schema: false }).tables ?? []).map((spec) => ({
    ...spec,
    ensure: spec.ensure ?? "present",
  }));
  const live = await liveState;
  const present = specs.filter((spec) => spec.ensure === "present");
  const normalised =
    present.length > 0
      ? await normalise(present, live.version, ctx)
      : new Map<string, NftTable<DesiredRule>>();

  const tables: DesiredTable[] = specs.map((spec) => {
    const id = tableId(spec);
    if (spec.ensure === "absent") return { id, ensure: "absent", spec, liveTexts: {} };
    const table = normalised.get(id);
    if (table === undefined) throw new Error(`bug: table ${id} was not normalised`);
    return { id, ensure: "present", spec, table, liveTexts: {} };
  });

  const toRender = tablesWithUnknownRules(tables, live);
  if (toRender.length > 0) {
    // Rules added by hand most likely name the interfaces the file's rules name.
    const texts = await renderRules(toRender, interfaceNames(present), ctx);
    for (const table of tables) table.liveTexts = texts.get(table.id) ?? {};
  }
  await markForeign(tables, specs, live, ctx);
  return { tables };
}

/**
 * Marks the tables the plan would replace or delete that are on the host without op's mark:
 * their actions are adoptions, which the engine refuses unless the file (or --adopt) adopts
 * them, so another tool's table is never overwritten or removed by a typo. nft 1.0.6 leaves
 * table comments out of its JSON, so this reads each such table's text listing, and only for
 * tables that differ: a converged plan reads nothing more.
 */
async function markForeign(
  tables: readonly DesiredTable[],
  specs: readonly NftTableSpec[],
  live: NftLive,
  ctx: Ctx,
): Promise<void> {
  const touched = new Set(
    diffNftables({ tables: [...tables] }, live)
      .filter((action) => action.kind !== "create")
      .map((action) => action.id),
  );
  await Promise.all(
    tables.map(async (table, index) => {
      if (!touched.has(table.id)) return;
      const spec = specs[index] as NftTableSpec;
      const listing = await ctx.exec.run("nft", ["list", "table", spec.family, spec.name], {
        check: false,
      });
      // Gone meanwhile: the replacement creates it, and there is nothing left to delete.
      if (listing.exitCode !== 0 || carriesOwnerMark(listing.stdout)) return;
      table.foreign = { path: `${sectionPath}/tables/${index}`, allowed: spec.adopt === true };
    }),
  );
}

/** What the cache holds: the tables as nft printed them, each rule reduced to its key. */
type KeyedTable = NftTable<string>;

async function normalise(
  specs: readonly NftTableSpec[],
  nftVersion: string,
  ctx: Ctx,
): Promise<Map<string, NftTable<DesiredRule>>> {
  const script = definitionScript(specs);
  // The cache is asked only for exactly this script on this nft and kernel; an entry that does
  // not verify is ignored and replaced. Either way the result goes through checkLoaded.
  const cache = openCache({
    dir: ctx.cacheDir,
    keyFile: ctx.cacheKeyFile,
    name: "nftables",
    maxEntries: cacheEntries,
    log: ctx.log,
  });
  const input = JSON.stringify([cacheFormat, nftVersion, release(), script.text]);
  const cached = cache?.get(input);
  if (cached !== undefined) {
    try {
      return withTexts(checkLoaded(JSON.parse(cached) as KeyedTable[], specs), specs);
    } catch {
      ctx.log.debug("nftables: a verified cache entry did not match the file; checking again");
    }
  }

  const listing = await withThrowawayNamespace(interfaceNames(specs), ctx, async (nft) => {
    const loaded = await nft(["-f", "-"], script.text);
    if (loaded.exitCode === programMissing) throw nftMissing();
    if (loaded.exitCode !== 0) {
      if (/^nsenter:/m.test(loaded.stderr)) {
        throw nftFailed("nsenter nft -f - (throw-away namespace)", loaded.stderr);
      }
      throw refused(script, loaded.stderr, specs);
    }
    const listed = await nft(["-j", "-s", "list", "ruleset"]);
    if (listed.exitCode !== 0) {
      throw nftFailed("nft -j -s list ruleset (throw-away namespace)", listed.stderr);
    }
    return listed.stdout;
  });

  const loaded = parseRuleset(listing, "nft -j -s list ruleset (throw-away namespace)");
  const keyed = checkLoaded(loaded.tables.map(keyRules), specs);
  cache?.put(input, JSON.stringify(keyed));
  return withTexts(keyed, specs);
}

function nftMissing(): OpError {
  return new OpError("tool-missing", "nft is not installed or not on PATH", {
    hint: "install the nftables package; run `op doctor` to see what the host lacks",
    context: { plugin: "nftables", phase: "prepare" },
  });
}

function keyRules(table: NftTable): KeyedTable {
  return {
    ...table,
    chains: table.chains.map((chain) => ({ ...chain, rules: chain.rules.map(ruleKey) })),
  };
}

/** nft refused the file's tables: say where, in the file's terms and by JSON path. */
function refused(script: Script, stderr: string, specs: readonly NftTableSpec[]): OpError {
  const problems = locateErrors(stderr, script);
  const first = problems[0];
  return new OpError(
    "invalid-state",
    `nft refused ${first ? describeProblem(first) : "the nftables section"}`,
    {
      details: problems.map((problem) => problemLine(refusal(problem, specs, sectionPath))),
      hint: "op checked the file's tables in a throw-away network namespace; nothing on the host changed",
      context: {
        plugin: "nftables",
        phase: "prepare",
        ...(first?.origin ? { id: first.origin.table } : {}),
      },
    },
  );
}

/** One error of nft's as a problem at the JSON path of what it is about. */
function refusal(problem: NftProblem, specs: readonly NftTableSpec[], prefix: string): Problem {
  return {
    path: originPath(problem.origin, specs, prefix),
    message: `nft refused ${describeProblem(problem)}`,
  };
}

/**
 * The JSON path of a script line's origin: its rule, element, chain, set or table, as far as
 * the file says (the first of equal rules or elements: nft refuses them alike). `specs` are
 * the section's tables in the file's order.
 */
export function originPath(
  origin: Origin | undefined,
  specs: readonly NftTableSpec[],
  prefix: string,
): string {
  const tableIndex = origin ? specs.findIndex((spec) => tableId(spec) === origin.table) : -1;
  const spec = specs[tableIndex];
  if (origin === undefined || spec === undefined) return prefix || "/";
  const table = `${prefix}/tables/${tableIndex}`;
  if (origin.chain !== undefined) {
    const chains = spec.chains ?? [];
    const chainIndex = chains.findIndex((chain) => chain.name === origin.chain);
    const rules = chains[chainIndex]?.rules ?? [];
    if (chainIndex < 0) return table;
    const ruleIndex = origin.rule === undefined ? -1 : rules.indexOf(origin.rule);
    return `${table}/chains/${chainIndex}${ruleIndex < 0 ? "" : `/rules/${ruleIndex}`}`;
  }
  if (origin.set !== undefined) {
    const kind = origin.set.kind === "set" ? "sets" : "maps";
    const sets: readonly { name: string; elements?: ReadonlyArray<string | readonly string[]> }[] =
      spec[kind] ?? [];
    const setIndex = sets.findIndex((set) => set.name === origin.set?.name);
    if (setIndex < 0) return table;
    const elementIndex = (sets[setIndex]?.elements ?? []).findIndex(
      (element) =>
        (Array.isArray(element) ? `${element[0]} : ${element[1]}` : element) === origin.element,
    );
    return `${table}/${kind}/${setIndex}${elementIndex < 0 ? "" : `/elements/${elementIndex}`}`;
  }
  return table;
}

/**
 * `op validate`'s check by nft's own parser: the section's tables loaded into a throw-away
 * network namespace, nothing of the host's read. Each refusal is a problem at its JSON path;
 * a check that could not run (no nft, no right to make a namespace) is a warning, since the
 * file may still be fine. Skipped when the code checks refuse the section: no script is
 * written from tables they refuse (those problems are the section's check's to report).
 */
export async function nftParserCheck(
  section: unknown,
  path: string,
  ctx: Ctx,
): Promise<{ problems: Problem[]; warnings: Problem[] }> {
  if (sectionProblems(section, path, false).length > 0) return { problems: [], warnings: [] };
  const tables = (section as { tables?: NftTableSpec[] }).tables ?? [];
  const present = tables.filter((spec) => spec.ensure !== "absent");
  if (present.length === 0) return { problems: [], warnings: [] };
  const script = definitionScript(present);
  const notChecked = (why: string) => ({
    problems: [],
    warnings: [
      {
        path,
        message: `nft did not check the rules: ${why}`,
        hint: "op validate runs nft in a throw-away network namespace, which needs root; op plan checks them too",
      },
    ],
  });
  try {
    const loaded = await withThrowawayNamespace(interfaceNames(present), ctx, (nft) =>
      nft(["-f", "-"], script.text),
    );
    if (loaded.exitCode === 0) return { problems: [], warnings: [] };
    if (loaded.exitCode === programMissing)
      return notChecked("nft is not installed or not on PATH");
    if (/^nsenter:/m.test(loaded.stderr))
      return notChecked(loaded.stderr.trim().split("\n")[0] ?? "");
    const problems = locateErrors(loaded.stderr, script).map((problem) =>
      refusal(problem, tables, path),
    );
    return { problems, warnings: [] };
  } catch (error) {
    // ip netns add refused (not root) or missing: the host's tools, not the file.
    if (!(error instanceof OpError)) throw error;
    return notChecked(error.message);
  }
}

/**
 * The loaded tables, checked against the file: exactly the declared tables, chains, sets and
 * maps, and each chain with as many rules as declared (a rule that turned into several, or
 * a table nobody declared, means something got past the rule checks).
 */
function checkLoaded(loaded: readonly KeyedTable[], specs: readonly NftTableSpec[]): KeyedTable[] {
  const byId = new Map(loaded.map((table) => [tableId(table), table]));
  const problems: string[] = [];
  for (const id of byId.keys()) {
    if (!specs.some((spec) => tableId(spec) === id)) {
      problems.push(`table ${id} appeared but is not declared`);
    }
  }
  const names = (list: readonly { name: string }[]) =>
    list
      .map((x) => x.name)
      .sort()
      .join(", ");
  for (const spec of specs) {
    const id = tableId(spec);
    const table = byId.get(id);
    if (!table) {
      problems.push(`table ${id} is missing after loading it`);
      continue;
    }
    for (const [what, declared, found] of [
      ["chains", spec.chains ?? [], table.chains],
      ["sets", spec.sets ?? [], table.sets],
      ["maps", spec.maps ?? [], table.maps],
    ] as const) {
      if (names(declared) !== names(found)) {
        problems.push(
          `table ${id}: ${what} [${names(found)}] loaded, [${names(declared)}] declared`,
        );
      }
    }
    if (table.objects.length > 0) {
      problems.push(`table ${id}: undeclared objects ${table.objects.join(", ")}`);
    }
    for (const chain of table.chains) {
      const declared = spec.chains?.find((c) => c.name === chain.name)?.rules ?? [];
      if (
        chain.rules.length !== declared.length ||
        chain.rules.some((key) => typeof key !== "string")
      ) {
        problems.push(
          `table ${id}, chain ${chain.name}: ${chain.rules.length} rules loaded, ${declared.length} declared`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new OpError("invalid-state", "the nftables section did not load as declared", {
      details: problems,
      hint: "each rule must be exactly one nft rule; nothing on the host changed",
      context: { plugin: "nftables", phase: "prepare" },
    });
  }
  return specs.map((spec) => byId.get(tableId(spec)) as KeyedTable);
}

/** The checked tables with the file's text beside each rule key. */
function withTexts(
  tables: readonly KeyedTable[],
  specs: readonly NftTableSpec[],
): Map<string, NftTable<DesiredRule>> {
  const result = new Map<string, NftTable<DesiredRule>>();
  tables.forEach((table, i) => {
    const spec = specs[i] as NftTableSpec;
    const declaredSets = [...(spec.sets ?? []), ...(spec.maps ?? [])];
    // Elements of a dynamic set are written by rules, not by the file.
    const unmanaged = (set: NftSet): NftSet =>
      declaredSets.find((s) => s.name === set.name)?.flags?.includes("dynamic")
        ? { name: set.name, props: set.props }
        : set;
    result.set(tableId(table), {
      ...table,
      sets: table.sets.map(unmanaged),
      maps: table.maps.map(unmanaged),
      chains: table.chains.map((chain) => {
        const texts = spec.chains?.find((c) => c.name === chain.name)?.rules ?? [];
        return { ...chain, rules: chain.rules.map((key, j) => ({ key, text: texts[j] ?? "" })) };
      }),
    });
  });
  return result;
}

const interfaceReference =
  /\b(?:iif|oif)\s+(?:(?:!=|==|eq|ne)\s+)?(?:\{([^}]*)\}|"([^"]*)"|([A-Za-z0-9_][A-Za-z0-9_.-]*))/g;
const interfaceName = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** Interfaces the tables name by index (iif/oif, chain devices): nft resolves them on load. */
export function interfaceNames(specs: readonly NftTableSpec[]): string[] {
  const names = new Set<string>();
  for (const spec of specs) {
    for (const chain of spec.chains ?? []) {
      if (chain.device !== undefined) names.add(chain.device);
      for (const rule of chain.rules ?? []) {
        for (const match of rule.matchAll(interfaceReference)) {
          const listed = match[1]?.split(",") ?? [match[2] ?? match[3] ?? ""];
          for (const name of listed) names.add(name.trim().replace(/^"(.*)"$/, "$1"));
        }
      }
    }
  }
  return [...names]
    .filter((name) => interfaceName.test(name) && !["lo", "vmap", "map"].includes(name))
    .sort();
}

/** Live tables in the file whose rules the file does not have (to show them in the plan). */
function tablesWithUnknownRules(tables: readonly DesiredTable[], live: NftLive): NftTable[] {
  const liveById = new Map(live.tables.map((table) => [tableId(table), table]));
  return tables.flatMap((want) => {
    const have = liveById.get(want.id);
    if (!have) return [];
    const unknown = have.chains.some((chain) => {
      if (want.ensure === "absent") return chain.rules.length > 0;
      const known = new Set(
        want.table.chains.find((c) => c.name === chain.name)?.rules.map((rule) => rule.key),
      );
      return chain.rules.some((rule) => !known.has(ruleKey(rule)));
    });
    return unknown ? [have] : [];
  });
}

/**
 * nft's text for every rule of the given live tables, by table id and then handle. Loads
 * their JSON into a throw-away namespace and lists it with handles; rules are matched by
 * their order in each chain. Best effort: on any failure the plan shows nft's JSON instead.
 */
async function renderRules(
  tables: readonly NftTable[],
  interfaces: readonly string[],
  ctx: Ctx,
): Promise<Map<string, Record<string, string>>> {
  const texts = new Map<string, Record<string, string>>();
  const input = JSON.stringify({ nftables: tables.flatMap(tableToNftJson) });
  const result = await withThrowawayNamespace(interfaces, ctx, (nft) =>
    withPrivateFile(input, async (path) => {
      const loaded = await nft(["-j", "-f", path]);
      return loaded.exitCode === 0 ? await nft(["-a", "list", "ruleset"]) : loaded;
    }),
  );
  if (result.exitCode !== 0) {
    ctx.log.debug(`nftables: could not render live rules as text: ${result.stderr.trim()}`);
    return texts;
  }
  const rendered = parseRuleTexts(result.stdout);
  for (const table of tables) {
    const id = tableId(table);
    const byHandle: Record<string, string> = {};
    for (const chain of table.chains) {
      const lines = rendered.get(`${id}/${chain.name}`) ?? [];
      if (lines.length !== chain.rules.length) continue;
      chain.rules.forEach((rule, i) => {
        if (rule.handle !== undefined && lines[i] !== undefined)
          byHandle[String(rule.handle)] = lines[i];
      });
    }
    texts.set(id, byHandle);
  }
  return texts;
}

/** Rules of `nft -a list ruleset`, by `family/table/chain`, in order, without their handles. */
export function parseRuleTexts(listing: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  let table: string | undefined;
  let rules: string[] | undefined;
  let pending = "";
  for (const raw of listing.split("\n")) {
    const line = raw.trim();
    const tableHeader = /^table (\S+) (\S+) \{/.exec(line);
    if (tableHeader) {
      table = `${tableHeader[1]}/${tableHeader[2]}`;
      continue;
    }
    const chainHeader = /^chain (\S+) \{/.exec(line);
    if (chainHeader && table !== undefined && rules === undefined) {
      rules = [];
      chains.set(`${table}/${chainHeader[1]}`, rules);
      continue;
    }
    if (rules === undefined) continue;
    if (line === "}") {
      rules = undefined;
      pending = "";
      continue;
    }
    const rule = /^(.*) # handle \d+$/.exec(line);
    if (rule) {
      rules.push(`${pending}${rule[1]}`);
      pending = "";
    } else if (!/^(?:type \S+ hook |comment "|devices = )/.test(line) && line !== "") {
      pending += `${line} `; // a rule nft wrapped over several lines
    }
  }
  return chains;
}
