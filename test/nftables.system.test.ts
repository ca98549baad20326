/**
 * System tests of the nftables plugin against the real nft and kernel. Every test works in
 * its own network namespace (`ops-nft-<random>`), deleted afterwards, and never touches the
 * host's ruleset.
 */

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { nftablesPlugin } from "../plugins/nftables/index.js";
import type { NftAction, NftablesSection, NftTableSpec } from "../plugins/nftables/types.js";
import { adoptionProblems, refusedPlan } from "../src/engine/reconcile.js";
import { createRunner, type Runner } from "../src/exec.js";
import type { Ctx } from "../src/plugin.js";
import { prepareWith, quietCtx } from "./support/engine.js";
import { rejection } from "./support/errors.js";
import { nftablesRunner } from "./support/nftables.js";

const host = createRunner();
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Sandbox {
  ns: string;
  ctx: Ctx;
  /** Every command the plugin started, as "command arg...". */
  commands: string[];
  nft(...args: string[]): Promise<string>;
  /** Runs a command in the namespace, outside the plugin (a person at the keyboard). */
  inNs: Runner["run"];
}

async function sandbox(): Promise<Sandbox> {
  const ns = `ops-nft-${randomBytes(4).toString("hex")}`;
  await host.run("ip", ["netns", "add", ns]);
  cleanups.push(() => host.run("ip", ["netns", "del", ns]));
  // The cache and its key, as op lays them out: the key beside the ledger key, not in the cache.
  const home = await mkdtemp(join(tmpdir(), "ops-nft-cache-"));
  cleanups.push(() => rm(home, { recursive: true, force: true }));
  const inner = createRunner({ netns: ns });
  const commands: string[] = [];
  const exec = nftablesRunner(ns, (command) => commands.push(command));
  const ctx: Ctx = quietCtx({
    exec,
    cacheDir: join(home, "cache"),
    cacheKeyFile: join(home, "keys", "cache.key"),
  });
  return {
    ns,
    ctx,
    commands,
    nft: async (...args) => (await inner.run("nft", args)).stdout,
    inNs: (command, args, options) => inner.run(command, args, options),
  };
}

/** How many times the file's tables were loaded into a throw-away namespace. */
function throwawayLoads(commands: readonly string[]): number {
  return commands.filter((c) => /^nsenter --net=\S+ nft -f -$/.test(c)).length;
}

async function plan(section: NftablesSection, ctx: Ctx): Promise<NftAction[]> {
  const live = await nftablesPlugin.query(ctx);
  const desired = await prepareWith(nftablesPlugin, section, live, ctx);
  const actions = nftablesPlugin.diff(desired, live);
  // As the engine does: an adopt the file does not allow refuses the plan.
  const refusals = adoptionProblems(actions, ctx.options);
  if (refusals.length > 0) throw refusedPlan(refusals);
  return actions;
}

/** Plans, applies every action, and returns what a second plan still finds (should be none). */
async function converge(
  section: NftablesSection,
  ctx: Ctx,
): Promise<{ applied: NftAction[]; remaining: NftAction[] }> {
  const applied = await plan(section, ctx);
  for (const action of applied) await nftablesPlugin.apply(action, ctx);
  return { applied, remaining: await plan(section, ctx) };
}

const demo: NftablesSection = {
  tables: [
    {
      family: "inet",
      name: "op_demo",
      sets: [
        {
          name: "allowed",
          type: "ipv4_addr",
          flags: ["interval"],
          elements: ["198.18.0.0/16", "198.19.1.1"],
        },
      ],
      maps: [
        { name: "verdicts", type: "ipv4_addr", map: "verdict", elements: [["198.18.1.1", "drop"]] },
      ],
      chains: [
        {
          name: "input",
          type: "filter",
          hook: "input",
          priority: "filter",
          policy: "drop",
          comment: "inbound",
          rules: [
            "ct state established,related accept",
            "tcp dport {22,80} accept",
            'ip saddr @allowed counter accept comment "lab nets"',
            "ip saddr vmap @verdicts",
            "jump services",
          ],
        },
        { name: "services", rules: ["udp dport 53 accept"] },
      ],
    },
    {
      family: "ip",
      name: "op_nat",
      chains: [
        {
          name: "post",
          type: "nat",
          hook: "postrouting",
          priority: "srcnat",
          rules: ["ip saddr 198.18.0.0/15 return"],
        },
      ],
    },
  ],
};

describe("nftables plugin on a real kernel", () => {
  it("creates the tables from nothing, then finds nothing to do", async () => {
    const { ctx, nft } = await sandbox();
    const { applied, remaining } = await converge(demo, ctx);
    expect(applied.map((a) => `${a.kind} ${a.id} (${a.reason})`)).toEqual([
      "create inet/op_demo (not on host)",
      "create ip/op_nat (not on host)",
    ]);
    expect(remaining).toEqual([]);
    const listing = await nft("list", "table", "inet", "op_demo");
    expect(listing).toContain('comment "managed by op"');
    expect(listing).toContain("tcp dport { 22, 80 } accept");
    expect(listing).toContain("policy drop;");
    // Applying the same file again is a no-op.
    expect((await converge(demo, ctx)).applied).toEqual([]);
  });

  it("sees a rule added by hand as a change, shows it as nft text, and removes it", async () => {
    const { ctx, nft } = await sandbox();
    await converge(demo, ctx);
    await nft("add", "rule", "inet", "op_demo", "services", "tcp", "dport", "8080", "accept");
    const actions = await plan(demo, ctx);
    expect(actions).toHaveLength(1);
    const [action] = actions;
    expect(action?.kind).toBe("modify");
    expect(action?.kind === "modify" && action.changes).toEqual([
      { path: "chain services/rules", before: "tcp dport 8080 accept" },
    ]);
    expect(action?.reason).toBe("differs from file");
    const { remaining } = await converge(demo, ctx);
    expect(remaining).toEqual([]);
    expect(await nft("list", "chain", "inet", "op_demo", "services")).not.toContain("8080");
  });

  it("sees rule order, policy and set elements changed in the file", async () => {
    const { ctx } = await sandbox();
    await converge(demo, ctx);
    const [table, nat] = demo.tables ?? [];
    const [input, services] = table?.chains ?? [];
    const changed: NftablesSection = {
      tables: [
        {
          ...table,
          family: "inet",
          name: "op_demo",
          sets: [
            {
              name: "allowed",
              type: "ipv4_addr",
              flags: ["interval"],
              elements: ["198.18.0.0/16", "198.19.2.0/24"],
            },
          ],
          chains: [
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: 0,
              policy: "accept",
              rules: [...(input?.rules ?? [])].reverse(),
            },
            services ?? { name: "services" },
          ],
        },
        ...(nat ? [nat] : []),
      ],
    };
    const actions = await plan(changed, ctx);
    expect(actions.map((a) => a.id)).toEqual(["inet/op_demo"]);
    const changes = actions[0]?.kind === "modify" ? actions[0].changes : [];
    expect(changes).toContainEqual({ path: "chain input/policy", before: "drop", after: "accept" });
    expect(changes).toContainEqual({ path: "set allowed/elements", before: "198.19.1.1" });
    expect(changes).toContainEqual({ path: "set allowed/elements", after: "198.19.2.0/24" });
    expect(changes.filter((c) => c.path === "chain input/rules").length).toBeGreaterThan(0);
    expect((await converge(changed, ctx)).remaining).toEqual([]);
  });

  it("treats a rule written differently but printed the same as no drift", async () => {
    const { ctx } = await sandbox();
    const compact: NftablesSection = {
      tables: [
        {
          family: "inet",
          name: "op_fmt",
          chains: [
            { name: "c", rules: ["tcp dport {22,80} accept", "ip saddr 198.18.0.1 counter drop"] },
          ],
        },
      ],
    };
    const spaced: NftablesSection = {
      tables: [
        {
          family: "inet",
          name: "op_fmt",
          chains: [
            {
              name: "c",
              rules: ["tcp  dport { 22, 80 }  accept", "ip saddr 198.18.0.1  counter  drop"],
            },
          ],
        },
      ],
    };
    await converge(compact, ctx);
    expect(await plan(spaced, ctx)).toEqual([]);
  });

  it("refuses a syntax error before anything changes, naming table, chain and rule", async () => {
    const { ctx, nft } = await sandbox();
    await converge(demo, ctx);
    const before = await nft("list", "ruleset");
    const broken: NftablesSection = {
      tables: [
        {
          family: "inet",
          name: "op_demo",
          chains: [{ name: "input", rules: ["tcp dport 22 accept", "tcp dport 23 acept"] }],
        },
      ],
    };
    const error = await rejection(plan(broken, ctx));
    expect(error.code).toBe("invalid-state");
    expect(error.message).toContain('table inet/op_demo, chain input, rule "tcp dport 23 acept"');
    expect(error.message).toContain("syntax error");
    expect(await nft("list", "ruleset")).toBe(before);
  });

  it("refuses a rule the kernel rejects (jump to a missing chain), in prepare and in apply", async () => {
    const { ctx, nft } = await sandbox();
    await converge(demo, ctx);
    const before = await nft("list", "ruleset");
    const spec = {
      family: "inet" as const,
      name: "op_demo",
      chains: [{ name: "input", rules: ["jump nowhere"] }],
    };
    const error = await rejection(plan({ tables: [spec] }, ctx));
    expect(error.code).toBe("invalid-state");
    expect(error.message).toContain('table inet/op_demo, chain input, rule "jump nowhere"');
    expect(error.message).toContain("No such file or directory");

    // The same table handed straight to apply (as a stale plan would): one failed transaction.
    const action: NftAction = {
      kind: "modify",
      plugin: "nftables",
      resource: "table",
      id: "inet/op_demo",
      before: { family: "inet", name: "op_demo" },
      after: spec,
      changes: [],
      reason: "test",
    };
    const applyError = await rejection(nftablesPlugin.apply(action, ctx));
    expect(applyError.code).toBe("apply-failed");
    expect(applyError.message).toContain('table inet/op_demo, chain input, rule "jump nowhere"');
    expect(applyError.hint).toContain("nothing on the host changed");
    expect(await nft("list", "ruleset")).toBe(before);
  });

  it("refuses an action whose table would inject commands, before running nft", async () => {
    const { ctx, nft, commands } = await sandbox();
    const before = await nft("list", "ruleset");
    const spec = {
      family: "inet",
      name: "op_evil",
      chains: [{ name: "c", rules: ["accept }\ntable inet pwned { chain x {"] }],
    };
    // A forged plan: apply checks the table again whatever its type says.
    const action: NftAction = {
      kind: "create",
      plugin: "nftables",
      resource: "table",
      id: "inet/op_evil",
      after: spec as NftTableSpec,
      reason: "test",
    };
    const error = await rejection(nftablesPlugin.apply(action, ctx));
    expect(error.code).toBe("invalid-state");
    expect(error.details.join("\n")).toContain("/tables/0/chains/0/rules/0");
    expect(commands).toEqual([]);
    expect(await nft("list", "ruleset")).toBe(before);
  });

  it("deletes a table marked absent, and then has nothing to do", async () => {
    const { ctx, nft } = await sandbox();
    await converge(demo, ctx);
    const absent: NftablesSection = {
      tables: [{ family: "ip", name: "op_nat", ensure: "absent" }],
    };
    const { applied, remaining } = await converge(absent, ctx);
    expect(applied.map((a) => `${a.kind} ${a.id} (${a.reason})`)).toEqual([
      "delete ip/op_nat (ensure: absent)",
    ]);
    expect(applied[0]?.kind === "delete" && applied[0].before).toMatchObject({
      chains: [{ name: "post", rules: ["ip saddr 198.18.0.0/15 return"] }],
    });
    expect(remaining).toEqual([]);
    expect(await nft("list", "tables")).not.toContain("op_nat");
    expect(await nft("list", "tables")).toContain("op_demo");
  });

  it("refuses to delete a table op did not create unless the file adopts it", async () => {
    const { ctx, nft, inNs } = await sandbox();
    // Another tool's table; its rule even carries op's comment, which is not the table's mark.
    await inNs("nft", ["-f", "-"], {
      input:
        'table inet ops_foreign {\n  chain c {\n    tcp dport 22 accept comment "managed by op"\n  }\n}\n',
    });
    const before = await nft("list", "ruleset");
    const absent = (adopt?: boolean): NftablesSection => ({
      tables: [
        { family: "inet", name: "ops_absent_never_there", ensure: "absent" },
        { family: "inet", name: "ops_foreign", ensure: "absent", ...(adopt ? { adopt } : {}) },
      ],
    });
    const error = await rejection(plan(absent(), ctx));
    expect(error.code).toBe("invalid-state");
    expect(error.details).toEqual([
      "/plugins/nftables/tables/1: nftables table inet/ops_foreign exists and op did not create it, so op will not delete it unless it is adopted",
    ]);
    expect(await nft("list", "ruleset")).toBe(before);

    const { applied, remaining } = await converge(absent(true), ctx);
    expect(applied.map((a) => `${a.kind} ${a.id}`)).toEqual(["delete inet/ops_foreign"]);
    expect(remaining).toEqual([]);
    expect(await nft("list", "tables")).not.toContain("ops_foreign");
  });

  it("sees a table made dormant by hand as drift, and wakes it", async () => {
    const { ctx, nft, inNs } = await sandbox();
    const section: NftablesSection = {
      tables: [
        {
          family: "inet",
          name: "ops_wake",
          chains: [{ name: "input", type: "filter", hook: "input", priority: 0, policy: "accept" }],
        },
      ],
    };
    expect((await converge(section, ctx)).remaining).toEqual([]);
    await inNs("nft", ["add", "table", "inet", "ops_wake", "{ flags dormant; }"]);
    expect(await nft("list", "table", "inet", "ops_wake")).toContain("flags dormant");

    const { applied, remaining } = await converge(section, ctx);
    expect(applied.map((a) => a.kind === "modify" && a.changes.map((c) => c.path))).toEqual([
      ["flags"],
    ]);
    expect(remaining).toEqual([]);
    expect(await nft("list", "table", "inet", "ops_wake")).not.toContain("dormant");
  });

  it("never changes a table the file does not list", async () => {
    const { ctx, nft, inNs } = await sandbox();
    await inNs("nft", ["-f", "-"], {
      input:
        "table inet incus {\n  chain incus_fwd {\n    type filter hook forward priority 0; policy accept;\n    tcp dport 22 counter accept\n  }\n}\n",
    });
    const before = await nft("list", "table", "inet", "incus");
    await converge(demo, ctx);
    await converge(
      {
        tables: [
          { family: "inet", name: "op_demo", chains: [] },
          { family: "ip", name: "op_nat", ensure: "absent" },
        ],
      },
      ctx,
    );
    const actions = await plan(demo, ctx);
    expect(actions.map((a) => a.id)).not.toContain("inet/incus");
    expect(await nft("list", "table", "inet", "incus")).toBe(before);
  });

  it("loads rules naming interfaces by index (iif) through the throw-away namespace", async () => {
    const { ctx, inNs } = await sandbox();
    await inNs("ip", ["link", "add", "ops-a", "type", "veth", "peer", "name", "ops-b"]);
    const section: NftablesSection = {
      tables: [
        {
          family: "inet",
          name: "op_if",
          chains: [{ name: "c", rules: ['iif "ops-a" accept', "oif { ops-a, ops-b } drop"] }],
        },
      ],
    };
    const { applied, remaining } = await converge(section, ctx);
    expect(applied).toHaveLength(1);
    expect(remaining).toEqual([]);
    // A rule added by hand naming an interface is still shown as nft text.
    await inNs("nft", ["add", "rule", "inet", "op_if", "c", "iif", "ops-b", "drop"]);
    const [drift] = await plan(section, ctx);
    expect(drift?.kind === "modify" && drift.changes).toEqual([
      { path: "chain c/rules", before: 'iif "ops-b" drop' },
    ]);
  });

  it("caches the normalised form, and recovers from a corrupt cache entry", async () => {
    const { ctx, commands } = await sandbox();
    const live = await nftablesPlugin.query(ctx);
    const first = await prepareWith(nftablesPlugin, demo, live, ctx);
    expect(throwawayLoads(commands)).toBe(1);

    commands.length = 0;
    const second = await prepareWith(nftablesPlugin, demo, live, ctx);
    expect(commands).toEqual([]);
    expect(second).toEqual(first);

    const dir = join(ctx.cacheDir as string, "nftables");
    const [entry] = await readdir(dir);
    expect(entry).toMatch(/^[0-9a-f]{64}\.json$/);
    const file = join(dir, entry as string);
    const good = await readFile(file, "utf8");
    await writeFile(file, good.slice(0, good.length / 2));
    const third = await prepareWith(nftablesPlugin, demo, live, ctx);
    expect(throwawayLoads(commands)).toBe(1);
    expect(third).toEqual(first);
    expect(await readFile(file, "utf8")).toBe(good);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("does not let a planted cache entry hide drift: it is ignored, checked again and replaced", async () => {
    const { ctx, commands } = await sandbox();
    const withPolicy = (policy: "accept" | "drop"): NftablesSection => ({
      tables: [
        {
          family: "inet",
          name: "ops_cache",
          chains: [{ name: "input", type: "filter", hook: "input", priority: 0, policy }],
        },
      ],
    });
    expect((await converge(withPolicy("accept"), ctx)).remaining).toEqual([]);
    const dir = join(ctx.cacheDir as string, "nftables");
    const [acceptEntry] = await readdir(dir);
    const accepting = JSON.parse(await readFile(join(dir, acceptEntry as string), "utf8"));

    // The file now asks for policy drop; someone who can write the cache (but has not the
    // key) plants, under the drop script's entry, the normalised form of the accept table.
    await plan(withPolicy("drop"), ctx);
    const dropEntry = (await readdir(dir)).find((name) => name !== acceptEntry) as string;
    const genuine = await readFile(join(dir, dropEntry), "utf8");
    const planted = { ...JSON.parse(genuine), output: accepting.output };
    await writeFile(join(dir, dropEntry), JSON.stringify(planted));

    commands.length = 0;
    const actions = await plan(withPolicy("drop"), ctx);
    expect(actions.map((a) => a.kind === "modify" && a.changes)).toEqual([
      [{ path: "chain input/policy", before: "accept", after: "drop" }],
    ]);
    expect(throwawayLoads(commands)).toBe(1);
    expect(await readFile(join(dir, dropEntry), "utf8")).toBe(genuine);
  });

  it("deletes throw-away namespaces an op killed midway left behind, not those of a running op", async () => {
    const { ctx } = await sandbox();
    // Names as op makes them (the random part says they are this test's): one of a process
    // that has exited, one of this process, which is running.
    const exited = spawnSync("true").pid as number;
    const abandoned = `op-nftcheck-${exited}-ops${randomBytes(2).toString("hex")}`;
    const running = `op-nftcheck-${process.pid}-ops${randomBytes(2).toString("hex")}`;
    for (const name of [abandoned, running]) {
      await host.run("ip", ["netns", "add", name]);
      cleanups.push(() => host.run("ip", ["netns", "del", name], { check: false }));
    }
    await plan(demo, ctx);
    const left = (await host.run("ip", ["netns", "list"])).stdout;
    expect(left).not.toContain(abandoned);
    expect(left).toContain(running);
  });

  it("keeps the cache bounded, dropping the least recently used entries", async () => {
    const { ctx } = await sandbox();
    const dir = join(ctx.cacheDir as string, "nftables");
    await mkdir(dir, { recursive: true });
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 40; i++) {
      const file = join(dir, `${String(i).padStart(64, "0")}.json`);
      await writeFile(file, "{}");
      await utimes(file, old, old);
    }
    const live = await nftablesPlugin.query(ctx);
    await prepareWith(nftablesPlugin, demo, live, ctx);
    const entries = await readdir(dir);
    expect(entries).toHaveLength(32);
    // The entry just written is among those kept.
    expect(entries.filter((name) => !/^0+\d*\.json$/.test(name))).toHaveLength(1);
  });
});
