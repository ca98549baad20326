/**
 * The run's sequencing (run.ts) with in-memory plugins, an in-memory ledger and lock: what it
 * reads, locks, records and reports in each mode. The CLI tests pin its text and JSON output.
 */
import { describe, expect, it } from "vitest";
import { memoryLedger, quietCtx, type RecordedStep } from "../../test/support/engine.js";
import { OpError } from "../errors.js";
import type { Action, Plugin } from "../plugin.js";
import { createRegistry, type PluginManifest } from "../registry.js";
import { type CheckedFile, type RunDeps, type RunEvent, reconcile } from "./run.js";
import { createAction } from "./testing.js";

const create = (id: string) => createAction("network", id);

/** A network plugin whose host converges to the file once `apply` ran for every action. */
function fakeNetwork(plan: Action[], failing = new Set<string>()) {
  const applied: string[] = [];
  let queries = 0;
  const plugin: Plugin = {
    name: "network",
    aliases: ["net"],
    resources: { thing: "a thing" },
    check: () => ({ problems: [], warnings: [] }),
    query: async () => {
      queries++;
      return { applied: [...applied] };
    },
    normalise: async () => ({}),
    resolve: () => ({}),
    diff: (_desired, live) =>
      plan.filter((action) => !(live as { applied: string[] }).applied.includes(action.id)),
    apply: async (action) => {
      if (failing.has(action.id)) throw new OpError("command-failed", `${action.id} refused`);
      applied.push(action.id);
    },
    report: () => ({ columns: [], rows: [] }),
  };
  return { plugin, applied, queries: () => queries };
}

function depsFor(plugin: Plugin, ledgerRecords: RecordedStep[] = [], others: Plugin[] = []) {
  const manifestOf = (p: Plugin, order: number): PluginManifest => ({
    name: p.name,
    aliases: p.aliases ?? [],
    order,
    schema: p.name,
    load: async () => p,
  });
  const all = [plugin, ...others];
  const ledger = Object.assign(memoryLedger(ledgerRecords), { closed: 0, opened: 0 });
  const events: RunEvent[] = [];
  const lock = { held: false, taken: 0, refuse: undefined as Error | undefined };
  const checked: CheckedFile = {
    document: {
      version: 1,
      sections: new Map(all.map((p) => [p.name, {}])),
      paths: new Map(all.map((p) => [p.name, `/plugins/${p.name}`])),
    },
    plugins: all,
  };
  let invalid: Error | undefined;
  const deps: RunDeps = {
    registry: createRegistry(all.map(manifestOf)),
    ctx: () => quietCtx(),
    checkFile: async () => {
      if (invalid) throw invalid;
      return checked;
    },
    ledger: {
      exists: () => ledger.records.length > 0,
      open: async () => {
        ledger.opened++;
        return Object.assign(ledger, {
          close: async () => {
            ledger.closed++;
          },
        });
      },
    },
    lock: async () => {
      if (lock.refuse) throw lock.refuse;
      lock.held = true;
      lock.taken++;
      return {
        release: () => {
          lock.held = false;
        },
      };
    },
    newRunId: () => "run-1",
    onEvent: (event) => events.push(event),
  };
  return {
    deps,
    ledger,
    events,
    lock,
    makeInvalid: (error: Error) => {
      invalid = error;
    },
  };
}

const request = { file: "state.json", parsed: { version: 1, plugins: { net: {} } } };

describe("reconcile", () => {
  it("plans without lock, ledger or change, reading the host once", async () => {
    const network = fakeNetwork([create("a"), create("b")]);
    const { deps, ledger, lock, events } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "plan" }, deps);
    expect(report.actions.map((a) => a.id)).toEqual(["a", "b"]);
    expect(report.summary).toEqual({ create: 2, modify: 0, delete: 0 });
    expect(report.converged).toBe(false);
    expect([network.applied, network.queries(), lock.taken, ledger.opened]).toEqual([[], 1, 0, 0]);
    expect(events).toEqual([]);
  });

  it("applies under the lock, records each step, verifies and reports the host converged", async () => {
    const network = fakeNetwork([create("a"), create("b")]);
    const { deps, ledger, lock, events } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "apply", concurrency: 1 }, deps);
    expect(report).toMatchObject({ run: "run-1", converged: true, interrupted: false });
    expect(report.remaining).toEqual([]);
    expect(report.error).toBeUndefined();
    expect(report.outcomes.map(({ action, outcome }) => [action.id, outcome.status])).toEqual([
      ["a", "ok"],
      ["b", "ok"],
    ]);
    expect(ledger.records.map((r) => `${r.target} ${r.status}`)).toEqual([
      "a intent",
      "a ok",
      "b intent",
      "b ok",
    ]);
    // Signed once, by the run (not also by the step runner), and closed; the lock released.
    expect([ledger.checkpoints, ledger.closed, lock.taken, lock.held]).toEqual([1, 1, 1, false]);
    // The host was read twice: the plan, then the verify.
    expect(network.queries()).toBe(2);
    // Each action starts (its intent recorded) before its outcome; the verify is told last.
    expect(events.map((e) => e.type)).toEqual([
      "planned",
      "applying",
      "started",
      "outcome",
      "started",
      "outcome",
      "verified",
    ]);
    const last = events.at(-1);
    expect(last?.type === "verified" && last.remaining).toEqual([]);
  });

  it("reports failed steps in the report, not as a throw, and does not verify", async () => {
    const network = fakeNetwork([create("a"), create("b")], new Set(["b"]));
    const { deps } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "apply" }, deps);
    expect(report.counts).toMatchObject({ failed: 1, skipped: 0, unknown: 0 });
    expect(report.remaining).toBeUndefined();
    expect(report.converged).toBe(false);
    expect(report.error?.message).toBe("1 action(s) failed, 0 skipped (run run-1)");
    expect(report.error?.details).toEqual(["create network thing b: b refused"]);
  });

  it("says an invalid file is invalid even when the lock is busy", async () => {
    const network = fakeNetwork([create("a")]);
    const { deps, lock, makeInvalid } = depsFor(network.plugin);
    lock.refuse = new OpError("locked", "another op apply holds the lock");
    await expect(reconcile({ ...request, mode: "apply" }, deps)).rejects.toThrow(/holds the lock/);
    makeInvalid(new OpError("invalid-file", "state.json is not a valid state file (1 problem)"));
    await expect(reconcile({ ...request, mode: "apply" }, deps)).rejects.toThrow(
      /not a valid state file/,
    );
    expect(network.queries()).toBe(0);
  });

  it("with nothing to change, settles an earlier run's open intent and signs it", async () => {
    const network = fakeNetwork([]);
    const { deps, ledger, events } = depsFor(network.plugin, [
      { run: "old", plugin: "network", action: "create", target: "a", status: "intent" },
    ]);
    const report = await reconcile({ ...request, mode: "apply" }, deps);
    expect(report.actions).toEqual([]);
    expect(report.converged).toBe(true);
    expect(report.settlements.map((s) => s.intent.target)).toEqual(["a"]);
    expect(ledger.records.at(-1)).toMatchObject({ status: "settled", settles: 1, run: "run-1" });
    expect([ledger.checkpoints, ledger.closed]).toEqual([1, 1]);
    expect(events.map((e) => e.type)).toEqual(["pending", "planned"]);
  });

  it("leaves a held action unapplied and unrecorded, and reports the host not converged", async () => {
    const held = { ...create("b"), held: "restart required for raw.lxc" };
    const network = fakeNetwork([create("a"), held]);
    const { deps, ledger } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "apply", concurrency: 1 }, deps);
    expect(network.applied).toEqual(["a"]);
    expect(report.outcomes.map(({ action, outcome }) => [action.id, outcome.status])).toEqual([
      ["b", "held"],
      ["a", "ok"],
    ]);
    expect(ledger.records.map((r) => `${r.target} ${r.status}`)).toEqual(["a intent", "a ok"]);
    expect(report.counts).toMatchObject({ failed: 0, skipped: 0, held: 1 });
    expect(report.converged).toBe(false);
    expect(report.remaining?.map((a) => a.id)).toEqual(["b"]);
    expect(report.error?.code).toBe("not-converged");
    expect(report.error?.message).toBe(
      "1 change was held, not applied: the host still differs from the file",
    );
    expect(report.error?.details).toEqual(["create network thing b: restart required for raw.lxc"]);
  });

  it("starts no step once interrupted, and reports the run interrupted without verifying", async () => {
    const network = fakeNetwork([create("a")]);
    const { deps } = depsFor(network.plugin);
    const controller = new AbortController();
    controller.abort();
    const report = await reconcile({ ...request, mode: "apply", signal: controller.signal }, deps);
    expect(report.interrupted).toBe(true);
    expect(report.outcomes.map(({ outcome }) => outcome.status)).toEqual(["cancelled"]);
    expect(network.applied).toEqual([]);
    expect(report.remaining).toBeUndefined();
  });

  it("reads, plans and applies only the plugins in scope", async () => {
    const network = fakeNetwork([create("a")]);
    const lxc = fakeNetwork([createAction("lxc", "c1")]);
    const lxcPlugin = { ...lxc.plugin, name: "lxc", aliases: [] };
    const { deps } = depsFor(network.plugin, [], [lxcPlugin]);
    const parsed = { version: 1, plugins: { net: {}, lxc: {} } };
    const report = await reconcile(
      { file: "state.json", parsed, mode: "apply", plugins: ["lxc"] },
      deps,
    );
    expect(report.actions.map((a) => `${a.plugin}/${a.id}`)).toEqual(["lxc/c1"]);
    expect(report.converged).toBe(true);
    expect([network.queries(), network.applied, lxc.queries(), lxc.applied]).toEqual([
      0,
      [],
      2,
      ["c1"],
    ]);
  });

  it("leaves out an excluded resource and what needs it, and still verifies the rest converged", async () => {
    const network = fakeNetwork([
      create("a"),
      createAction("network", "b", ["network/a"]),
      createAction("network", "c", ["network/b"]),
      create("d"),
    ]);
    const { deps, ledger } = depsFor(network.plugin);
    const report = await reconcile(
      { ...request, mode: "apply", exclude: [{ plugin: "network", id: "a" }] },
      deps,
    );
    expect(network.applied).toEqual(["d"]);
    expect(report.actions.map((a) => a.id)).toEqual(["d"]);
    expect(report.excluded.map((e) => [e.action.id, e.needs?.id])).toEqual([
      ["a", undefined],
      ["b", "a"],
      ["c", "b"],
    ]);
    expect(ledger.records.map((r) => `${r.target} ${r.status}`)).toEqual(["d intent", "d ok"]);
    // a, b and c still differ on the host, by the run's own choice: not an error.
    expect(report.converged).toBe(true);
    expect(report.error).toBeUndefined();
  });

  it("leaves excluded resources out of a check's drift too", async () => {
    const network = fakeNetwork([create("a"), create("b")]);
    const { deps } = depsFor(network.plugin);
    const report = await reconcile(
      { ...request, mode: "check", exclude: [{ plugin: "network", id: "b" }] },
      deps,
    );
    expect(report.actions.map((a) => a.id)).toEqual(["a"]);
    expect(report.excluded.map((e) => e.action.id)).toEqual(["b"]);
  });

  it("checks under the lock and records one drift record per differing resource, signed", async () => {
    const network = fakeNetwork([create("a"), create("b")]);
    const { deps, ledger, lock } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "check", recordDrift: true }, deps);
    expect(report).toMatchObject({ mode: "check", run: "run-1", converged: false });
    expect(network.applied).toEqual([]);
    expect(ledger.records).toEqual([
      {
        run: "run-1",
        plugin: "network",
        action: "create",
        target: "a",
        changes: { after: {} },
        status: "drift",
      },
      {
        run: "run-1",
        plugin: "network",
        action: "create",
        target: "b",
        changes: { after: {} },
        status: "drift",
      },
    ]);
    expect([ledger.checkpoints, ledger.opened, ledger.closed]).toEqual([1, 1, 1]);
    expect([lock.taken, lock.held]).toEqual([1, false]);
  });

  it("records nothing and opens no ledger when a check finds no drift", async () => {
    const network = fakeNetwork([]);
    const { deps, ledger, lock } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "check", recordDrift: true }, deps);
    expect(report.converged).toBe(true);
    expect(report.run).toBeUndefined();
    expect([ledger.records.length, ledger.opened, ledger.checkpoints, lock.taken]).toEqual([
      0, 0, 0, 1,
    ]);
  });

  it("records no drift without recordDrift, still under the lock", async () => {
    const network = fakeNetwork([create("a")]);
    const { deps, ledger, lock } = depsFor(network.plugin);
    const report = await reconcile({ ...request, mode: "check" }, deps);
    expect(report.actions.map((a) => a.id)).toEqual(["a"]);
    expect([ledger.records.length, ledger.opened, lock.taken]).toEqual([0, 0, 1]);
  });

  it("records only the drift a recordDrift filter accepts, and opens no ledger when it takes none", async () => {
    const network = fakeNetwork([create("a"), create("b")]);
    const { deps, ledger } = depsFor(network.plugin);
    const some = await reconcile(
      { ...request, mode: "check", recordDrift: (action) => action.id === "b" },
      deps,
    );
    expect(ledger.records.map((r) => [r.target, r.status])).toEqual([["b", "drift"]]);
    expect(some.actions.map((a) => a.id)).toEqual(["a", "b"]);
    const none = await reconcile({ ...request, mode: "check", recordDrift: () => false }, deps);
    expect(none.run).toBeUndefined();
    expect([ledger.records.length, ledger.opened]).toEqual([1, 1]);
  });

  it("refuses a check while the lock is busy, reading and recording nothing", async () => {
    const network = fakeNetwork([create("a")]);
    const { deps, ledger, lock } = depsFor(network.plugin);
    lock.refuse = new OpError("locked", "another op apply holds the lock");
    await expect(reconcile({ ...request, mode: "check", recordDrift: true }, deps)).rejects.toThrow(
      /holds the lock/,
    );
    expect([network.queries(), ledger.records.length, ledger.opened]).toEqual([0, 0, 0]);
  });
});
