/**
 * The engine's run-time behaviour with in-memory plugins and the in-memory ledger of
 * test/support/engine.ts (the real ledger has its own tests): outcomes `unknown` and
 * `cancelled`, an interrupted run, settling what an earlier run left open, and the plan's
 * order and skip rules strictly enough that flipping one of their conditions fails a test.
 */
import { describe, expect, it } from "vitest";
import { memoryLedger, quietCtx } from "../../test/support/engine.js";
import { OpError } from "../errors.js";
import { isOutcomeUnknown, OutcomeUnknown } from "../outcome.js";
import type { Plugin } from "../plugin.js";
import { runSteps } from "./dag.js";
import { buildPlan, type PlanStep } from "./plan.js";
import {
  applyPlan,
  describePending,
  type PendingIntent,
  type PlannedRun,
  planState,
  recordSettlements,
  settlePending,
} from "./reconcile.js";
import {
  createAction,
  deleteAction,
  emptySections,
  fakePlugin,
  label,
  modifyAction,
} from "./testing.js";

const order = ["network", "lxc", "nftables"];
const create = createAction;
const remove = deleteAction;
const modify = modifyAction;

const plugin = fakePlugin;

async function planned(...plugins: Plugin[]): Promise<PlannedRun> {
  return planState(emptySections(...plugins.map((p) => p.name)), plugins, quietCtx());
}

const keys = (steps: readonly PlanStep[]) => steps.map((s) => label(s.key));

describe("buildPlan order (each condition pinned)", () => {
  it("deletes before creates and modifies, deletes in reverse plugin order, the rest in order", () => {
    const plan = buildPlan(
      [
        modify("nftables", "m3"),
        create("lxc", "c2"),
        remove("network", "d1"),
        create("network", "c1"),
        remove("lxc", "d2"),
        modify("network", "m1"),
        remove("nftables", "d3"),
        create("nftables", "c3"),
      ],
      order,
    );
    expect(keys(plan.steps)).toEqual([
      "delete:nftables:d3",
      "delete:lxc:d2",
      "delete:network:d1",
      "create:network:c1",
      "modify:network:m1",
      "create:lxc:c2",
      "create:nftables:c3",
      "modify:nftables:m3",
    ]);
    // One wave per plugin and direction, strictly increasing along the run.
    expect(plan.steps.map((s) => s.wave)).toEqual([1, 2, 3, 4, 4, 5, 6, 6]);
  });

  it("puts a plugin the order does not know after the known ones, in both directions", () => {
    const plan = buildPlan(
      [create("extra", "x"), create("network", "n"), remove("extra", "y"), remove("lxc", "z")],
      order,
    );
    expect(keys(plan.steps)).toEqual([
      "delete:extra:y",
      "delete:lxc:z",
      "create:network:n",
      "create:extra:x",
    ]);
  });

  it("sorts within a wave by id, whatever order the plugin gave", () => {
    const plan = buildPlan([create("lxc", "b"), create("lxc", "a"), create("lxc", "c")], order);
    expect(keys(plan.steps)).toEqual(["create:lxc:a", "create:lxc:b", "create:lxc:c"]);
  });

  it("keeps needs on an earlier wave and in the same wave, and drops none", () => {
    const plan = buildPlan(
      [
        create("network", "br0"),
        create("network", "port", ["network/br0"]),
        create("lxc", "ct", ["network/br0", "network/port"]),
        // A delete needing a later create would be a plugin bug; one needing nothing is fine.
        remove("lxc", "old"),
      ],
      order,
    );
    const needs = Object.fromEntries(plan.steps.map((s) => [s.action.id, s.needs.map(label)]));
    expect(needs).toEqual({
      old: [],
      br0: [],
      port: ["create:network:br0"],
      ct: ["create:network:br0", "create:network:port"],
    });
  });

  it("makes a replacement's create and modify need its delete, never the reverse", () => {
    const plan = buildPlan([create("lxc", "ct"), remove("lxc", "ct")], order);
    expect(plan.steps.map((s) => [label(s.key), s.needs.map(label)])).toEqual([
      ["delete:lxc:ct", []],
      ["create:lxc:ct", ["delete:lxc:ct"]],
    ]);
  });
});

describe("runSteps skipping", () => {
  const action = create("p", "x");
  const step = (key: string, wave: number, needs: string[] = []): PlanStep => ({
    key,
    action,
    wave,
    needs,
  });

  it("runs a step whose needs all succeeded, and skips one whose need failed, was skipped or had an unknown outcome", async () => {
    const ran: string[] = [];
    const outcomes = await runSteps(
      [
        step("ok", 0),
        step("bad", 0),
        step("lost", 0),
        step("after-ok", 1, ["ok"]),
        step("after-bad", 1, ["bad"]),
        step("after-lost", 1, ["lost"]),
        step("after-skipped", 2, ["after-bad"]),
        step("after-both", 2, ["ok", "bad"]),
      ],
      async (s) => {
        ran.push(s.key);
        if (s.key === "bad") throw new Error("refused");
        if (s.key === "lost")
          throw new OpError("daemon-unavailable", "lost", {
            cause: new OutcomeUnknown("sent"),
          });
      },
      { concurrencyOf: () => 1 },
    );
    const status = Object.fromEntries([...outcomes].map(([k, o]) => [k, o.status]));
    expect(status).toEqual({
      ok: "ok",
      bad: "failed",
      lost: "unknown",
      "after-ok": "ok",
      "after-bad": "skipped",
      "after-lost": "skipped",
      "after-skipped": "skipped",
      "after-both": "skipped",
    });
    expect(ran.sort()).toEqual(["after-ok", "bad", "lost", "ok"]);
    expect(outcomes.get("after-skipped")).toMatchObject({ because: "after-bad" });
  });

  it("starts nothing once aborted: in-flight steps finish, queued and later ones are cancelled", async () => {
    const controller = new AbortController();
    const started: string[] = [];
    const steps = [
      step("a", 0),
      step("b", 0),
      step("c", 0),
      step("d", 0),
      // Not run because the run stopped, not because c failed: cancelled, not skipped.
      step("needs-c", 0, ["c"]),
      step("later", 1),
      step("dependent", 1, ["a"]),
    ];
    const outcomes = await runSteps(
      steps,
      async (s) => {
        started.push(s.key);
        await new Promise((done) => setTimeout(done, 5));
        if (s.key === "a") controller.abort();
        await new Promise((done) => setTimeout(done, 20));
      },
      { concurrencyOf: () => 2, signal: controller.signal },
    );
    // a and b were in flight (bound 2) when a aborted: both finish; nothing else starts.
    expect(started).toEqual(["a", "b"]);
    const status = Object.fromEntries([...outcomes].map(([k, o]) => [k, o.status]));
    expect(status).toEqual({
      a: "ok",
      b: "ok",
      c: "cancelled",
      d: "cancelled",
      "needs-c": "cancelled",
      later: "cancelled",
      dependent: "cancelled",
    });
  });
});

describe("applyPlan outcomes in the ledger", () => {
  it("records `unknown` (with the error) when the request may have been carried out, `failed` when it was refused", async () => {
    const ledger = memoryLedger();
    const run = await planned(
      plugin("lxc", [create("lxc", "lost"), create("lxc", "refused")], async (action) => {
        if (action.id === "lost")
          throw new OpError("daemon-unavailable", "lost the connection to Incus", {
            cause: new OutcomeUnknown("the request had been sent"),
          });
        throw new OpError("command-failed", "Incus refused: no such image");
      }),
    );
    const report = await applyPlan(run, ledger, quietCtx(), {});
    expect(report.unknown).toBe(1);
    expect(report.failed).toBe(1);
    expect(
      ledger.records.map((r) => [r.target, r.status, r.error]).filter(([, s]) => s !== "intent"),
    ).toEqual([
      ["lost", "unknown", "lost the connection to Incus"],
      ["refused", "failed", "Incus refused: no such image"],
    ]);
    // Unknown stays open: the next run settles it.
    expect((await ledger.pending()).map((p) => [p.target, p.status])).toEqual([
      ["lost", "unknown"],
    ]);
  });

  it("after an abort, every intent has an outcome, nothing more starts, and the records are signed", async () => {
    const controller = new AbortController();
    const ledger = memoryLedger();
    const actions = Array.from({ length: 6 }, (_, i) => create("network", `l${i}`));
    const run = await planned(
      plugin("network", actions, async (action) => {
        if (action.id === "l1") controller.abort();
        await new Promise((done) => setTimeout(done, 10));
      }),
      plugin("lxc", [create("lxc", "ct")]),
    );
    const report = await applyPlan(run, ledger, quietCtx(), {
      concurrency: 2,
      signal: controller.signal,
    });
    expect(report.cancelled).toBe(5);
    const intents = ledger.records.filter((r) => r.status === "intent").map((r) => r.target);
    const done = ledger.records.filter((r) => r.status === "ok").map((r) => r.target);
    expect(intents).toEqual(["l0", "l1"]);
    expect(done.sort()).toEqual(["l0", "l1"]);
    expect(await ledger.pending()).toEqual([]);
    expect(ledger.checkpoints).toBe(1);
  });

  it("uses the run id it is given, so settled records and the run's own share it", async () => {
    const ledger = memoryLedger();
    await applyPlan(await planned(plugin("lxc", [create("lxc", "a")])), ledger, quietCtx(), {
      run: "run-given",
    });
    expect(new Set(ledger.records.map((r) => r.run))).toEqual(new Set(["run-given"]));
  });
});

describe("settling what an earlier run left without an outcome", () => {
  const intent = (
    seq: number,
    pluginName: string,
    target: string,
    status: PendingIntent["status"] = "intent",
  ): PendingIntent => ({
    seq,
    run: "3df1aaaa-0000",
    plugin: pluginName,
    action: "create",
    target,
    status,
  });

  it("settles from this run's plan: a target it leaves alone matches the file, one it plans is redone", async () => {
    const run = await planned(plugin("lxc", [create("lxc", "ct2")]), plugin("network", []));
    const settled = settlePending(
      [intent(4, "lxc", "ct1"), intent(5, "lxc", "ct2", "unknown"), intent(6, "nftables", "t")],
      run,
    );
    expect(settled.map((s) => [s.intent.seq, s.how])).toEqual([
      [4, "interrupted; this run found the host matching the file for ct1"],
      [5, "outcome unknown; this run found ct2 still differing from the file and plans create"],
    ]);
    // nftables was not read this run: its intent stays pending.
  });

  it("leaves pending an intent whose target the section now ignores: this run did not read it", async () => {
    const lxc = plugin("lxc", []);
    const document = emptySections("lxc");
    const sections = new Map([["lxc", { ignore: ["ct1", "p/web*"] }]]);
    const run = await planState({ ...document, sections }, [lxc], quietCtx());
    const settled = settlePending(
      [intent(4, "lxc", "ct1"), intent(5, "lxc", "p/web2"), intent(6, "lxc", "ct2")],
      run,
    );
    expect(settled.map((s) => s.intent.seq)).toEqual([6]);
  });

  it("records one settled record per intent, which closes it", async () => {
    const ledger = memoryLedger([
      { run: "old", plugin: "lxc", action: "create", target: "ct1", status: "intent" },
    ]);
    const pending = await ledger.pending();
    expect(pending).toHaveLength(1);
    const run = await planned(plugin("lxc", []));
    await recordSettlements(ledger, "new", settlePending(pending, run));
    expect(ledger.records.at(-1)).toMatchObject({
      run: "new",
      status: "settled",
      settles: 1,
      target: "ct1",
      changes: { how: "interrupted; this run found the host matching the file for ct1" },
    });
    expect(await ledger.pending()).toEqual([]);
  });

  it("says which run was interrupted and how many actions it left", () => {
    expect(
      describePending([
        intent(1, "lxc", "a"),
        intent(2, "lxc", "b"),
        intent(3, "lxc", "c", "unknown"),
        { ...intent(9, "network", "br0"), run: "77aa0000-1111" },
      ]),
    ).toEqual([
      "run 3df1aaaa was interrupted: 2 actions without an outcome, 1 whose outcome op could not know (create lxc a; create lxc b; create lxc c)",
      "run 77aa0000 was interrupted: 1 action without an outcome (create network br0)",
    ]);
  });

  it("tells an unknown outcome by its cause, through the context op adds", () => {
    const error = new OpError("daemon-unavailable", "lost", { cause: new OutcomeUnknown("x") });
    expect(isOutcomeUnknown(error.within({ plugin: "lxc", phase: "apply" }))).toBe(true);
    expect(isOutcomeUnknown(new OpError("command-failed", "refused"))).toBe(false);
  });
});
