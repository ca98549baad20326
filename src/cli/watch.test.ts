/** How `op watch` reads an engine report: what it corrected, what failed, what it left. */
import { describe, expect, it } from "vitest";
import type { StepOutcome } from "../engine/dag.js";
import { createAction, modifyAction, runReport } from "../engine/testing.js";
import { OpError } from "../errors.js";
import { loadSettings } from "../host/settings.js";
import type { Action } from "../plugin.js";
import { createRegistry } from "../registry.js";
import { buildProgram } from "./program.js";
import { DriftMemory, exitOf, resultOf } from "./watch.js";

const report = runReport;

const outcome = (action: Action, status: StepOutcome["status"]) => ({
  action,
  outcome: {
    key: action.id,
    status,
    error: new Error("x"),
    because: "k",
    reason: "r",
  } as StepOutcome,
});

describe("op watch's reading of a run", () => {
  it("counts applied actions as corrected, failed, skipped and unknown ones as failed, held as drift", () => {
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((id) => createAction("network", id));
    const result = resultOf(
      report({
        outcomes: [
          outcome(a as Action, "ok"),
          outcome(b as Action, "failed"),
          outcome(c as Action, "skipped"),
          outcome(d as Action, "unknown"),
          outcome(e as Action, "held"),
        ],
        remaining: [{ ...(e as Action), held: "restart" }],
      }),
    );
    expect(result.corrected.map((r) => r.id)).toEqual(["a"]);
    expect(result.failed.map((r) => r.id)).toEqual(["b", "c", "d"]);
    expect(result.drift.map((r) => r.id)).toEqual(["e"]);
    expect(result.error).toBeUndefined();
  });

  it("takes an action applied but still differing at verify as failed, not corrected", () => {
    const a = modifyAction("nftables", "inet/t");
    const result = resultOf(report({ outcomes: [outcome(a, "ok")], remaining: [a] }));
    expect(result.corrected).toEqual([]);
    expect(result.failed).toEqual([{ plugin: "nftables", id: "inet/t", kind: "modify" }]);
  });

  it("takes a check's plan as drift, and gives the exit codes op apply would", () => {
    const a = createAction("lxc", "c1");
    const check = report({ mode: "check", actions: [a] });
    expect(resultOf(check)).toEqual({
      corrected: [],
      failed: [],
      drift: [{ plugin: "lxc", id: "c1", kind: "create" }],
    });
    expect(exitOf(check)).toBe(2);
    expect(exitOf(report({ mode: "check" }))).toBe(0);
    expect(exitOf(report({}))).toBe(0);
    expect(exitOf(report({ error: new OpError("apply-failed", "1 action(s) failed") }))).toBe(1);
  });
});

describe("op watch --flapping", () => {
  const option = () => {
    const watch = buildProgram(
      () => {},
      createRegistry([]),
      () => loadSettings({}),
    ).commands.find((command) => command.name() === "watch");
    const flapping = watch?.options.find((candidate) => candidate.long === "--flapping");
    if (flapping?.parseArg === undefined) throw new Error("op watch has no --flapping option");
    return { flapping, parse: (value: string) => flapping.parseArg?.(value, undefined) };
  };

  it("reads COUNT/MINUTES, defaulting to 5 corrections in 10 minutes", () => {
    const { flapping, parse } = option();
    expect(flapping.defaultValue).toEqual({ count: 5, withinMinutes: 10 });
    expect(parse("3/10")).toEqual({ count: 3, withinMinutes: 10 });
    expect(parse(" 40 / 0.5 ")).toEqual({ count: 40, withinMinutes: 0.5 });
  });

  it.each(["", "5", "1/10", "5/0", "5/-1", "5/10/2", "x/10", "5/1e9", "$(reboot)/1", "5/1441"])(
    "refuses %j naming the option",
    (value) => {
      expect(() => option().parse(value)).toThrow(/--flapping must be COUNT\/MINUTES/);
    },
  );
});

describe("observe mode's drift memory", () => {
  const table = (rules: string[]): Action =>
    Object.assign(modifyAction("nftables", "inet/t"), {
      changes: [{ path: "rules", before: [], after: rules }],
    });

  it("takes a resource's drift once, again when it changes, and after it was gone", () => {
    const memory = new DriftMemory();
    const link = createAction("network", "br0");
    expect([memory.isNew(link), memory.isNew(table(["drop"]))]).toEqual([true, true]);
    memory.remember([link, table(["drop"])], ["network", "nftables"]);
    // The same drift at the next resync: nothing new.
    expect([memory.isNew(link), memory.isNew(table(["drop"]))]).toEqual([false, false]);
    // The table now differs otherwise: recorded again.
    expect(memory.isNew(table(["accept"]))).toBe(true);
    // A run that read only nftables found it converged; the network drift is still known.
    memory.remember([], ["nftables"]);
    expect([memory.isNew(link), memory.isNew(table(["drop"]))]).toEqual([false, true]);
    // The network converged, then drifted again: recorded again.
    memory.remember([], ["network"]);
    expect(memory.isNew(link)).toBe(true);
    memory.remember([link], ["network"]);
    memory.forget();
    expect(memory.isNew(link)).toBe(true);
  });
});
