/**
 * The file's tables in the form nft itself prints them: loaded into a throw-away network
 * namespace and listed back as JSON, so `{22,80}` and `{ 22, 80 }` are the same rule. The
 * result is a pure function of nft's version, the kernel and the generated script, so it is
 * cached under `ctx.cacheDir`. Live rules the file lacks are rendered as nft text (another
 * throw-away load) so the plan can show them; `diff` stays pure.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { ruleKey } from "./diff.js";
import { parseRuleset, tableToNftJson } from "./parse.js";
import { nftFailed } from "./query.js";
import { definitionScript, describeProblem, locateErrors, type Script } from "./script.js";
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
import { validateSection } from "./validate.js";

/**
 * Creates, in the throw-away namespace, the interfaces named as arguments, so nft can resolve
 * rules matching them by index (iif/oif). A failure is left for nft to report on the rule;
 * `#` keeps the peers' names apart from any interface name a rule can give.
 */
const createInterfaces =
  'n=0; for dev do n=$((n + 1)); ip link add "$dev" type veth peer name "op#$n" 2>/dev/null || :; done';

/**
 * Runs in a new, empty network namespace: loads the script from stdin and lists the result.
 * Exit 3: nft refused the script; 127: no nft.
 */
const throwawayLoad = [
  "command -v nft >/dev/null 2>&1 || exit 127",
  createInterfaces,
  "nft -f - || exit 3",
  "exec nft -j -s list ruleset",
].join("\n");

/**
 * Loads nft JSON into a new, empty network namespace and lists it as text with handles.
 * `cat |` because nft's JSON parser opens /dev/stdin by path, which fails on a socket.
 */
const throwawayRender = [createInterfaces, "cat | nft -j -f - && exec nft -a list ruleset"].join(
  "\n",
);

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
  return { tables };
}

/** What the cache holds: the tables as nft printed them, each rule reduced to its key. */
type KeyedTable = NftTable<string>;

async function normalise(
  specs: readonly NftTableSpec[],
  nftVersion: string,
  ctx: Ctx,
): Promise<Map<string, NftTable<DesiredRule>>> {
  const script = definitionScript(specs);
  const key = createHash("sha256")
    .update(JSON.stringify([cacheFormat, nftVersion, release(), script.text]))
    .digest("hex");
  const cacheFile =
    ctx.cacheDir === undefined ? undefined : join(ctx.cacheDir, "nftables", `${key}.json`);

  if (cacheFile !== undefined) {
    const cached = await readFile(cacheFile, "utf8").catch(() => undefined);
    if (cached !== undefined) {
      try {
        const tables = withTexts(checkLoaded(JSON.parse(cached) as KeyedTable[], specs), specs);
        const now = new Date();
        await utimes(cacheFile, now, now).catch(() => undefined);
        return tables;
      } catch {
        ctx.log.debug(`nftables: ignoring unreadable cache entry ${cacheFile}`);
      }
    }
  }

  const result = await ctx.exec.run(
    "unshare",
    ["-n", "sh", "-c", throwawayLoad, "sh", ...interfaceNames(specs)],
    { input: script.text, check: false },
  );
  if (result.exitCode === 3) throw refused(script, result.stderr);
  if (result.exitCode === 127) {
    throw new OpError("tool-missing", "nft is not installed or not on PATH", {
      hint: "install the nftables package; run `op doctor` to see what the host lacks",
      context: { plugin: "nftables", phase: "prepare" },
    });
  }
  if (result.exitCode !== 0) {
    throw nftFailed("unshare -n nft -f - (throw-away namespace)", result.stderr);
  }

  const loaded = parseRuleset(result.stdout, "nft -j -s list ruleset (throw-away namespace)");
  const keyed = checkLoaded(loaded.tables.map(keyRules), specs);
  if (cacheFile !== undefined) {
    await writeAtomically(cacheFile, JSON.stringify(keyed), ctx);
    await pruneCache(join(cacheFile, ".."), ctx);
  }
  return withTexts(keyed, specs);
}

function keyRules(table: NftTable): KeyedTable {
  return {
    ...table,
    chains: table.chains.map((chain) => ({ ...chain, rules: chain.rules.map(ruleKey) })),
  };
}

/** nft refused the file's tables: say where, in the file's terms. */
function refused(script: Script, stderr: string): OpError {
  const problems = locateErrors(stderr, script);
  const first = problems[0];
  return new OpError(
    "invalid-state",
    `nft refused ${first ? describeProblem(first) : "the nftables section"}`,
    {
      details: problems.length > 1 ? problems.map(describeProblem) : [],
      hint: "op checked the file's tables in a throw-away network namespace; nothing on the host changed",
      context: {
        plugin: "nftables",
        phase: "prepare",
        ...(first?.origin ? { id: first.origin.table } : {}),
      },
    },
  );
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
  const result = await ctx.exec.run(
    "unshare",
    ["-n", "sh", "-c", throwawayRender, "sh", ...interfaces],
    { input, check: false },
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

async function writeAtomically(file: string, content: string, ctx: Ctx): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(join(file, ".."), { recursive: true });
    await writeFile(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    ctx.log.warn(`nftables: could not write cache entry ${file}: ${String(error)}`);
  }
}

/** Keeps the newest `cacheEntries` entries; the cache is disposable, so errors only log. */
async function pruneCache(dir: string, ctx: Ctx): Promise<void> {
  try {
    const names = (await readdir(dir)).filter((name) => name.endsWith(".json"));
    if (names.length <= cacheEntries) return;
    const entries = await Promise.all(
      names.map(async (name) => ({
        file: join(dir, name),
        used: (await stat(join(dir, name))).mtimeMs,
      })),
    );
    entries.sort((a, b) => b.used - a.used);
    await Promise.all(entries.slice(cacheEntries).map((entry) => unlink(entry.file)));
  } catch (error) {
    ctx.log.debug(`nftables: could not prune cache ${dir}: ${String(error)}`);
  }
}
