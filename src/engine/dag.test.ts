import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { runSteps } from "./dag.js";
import type { PlanStep } from "./plan.js";
import { createAction } from "./testing.js";

const action = createAction("p", "x");
const step = (key: string, wave = 0, needs: string[] = []): PlanStep => ({
  key,
  action,
  wave,
  needs,
});
const bound = (n: number) => ({ concurrencyOf: () => n });

describe("runSteps", () => {
  it("runs independent steps concurrently, never more than the bound", async () => {
    let running = 0;
    let peak = 0;
    const steps = Array.from({ length: 10 }, (_, i) => step(`s${i}`));
    await runSteps(
      steps,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
      },
      bound(3),
    );
    expect(peak).toBe(3);
  });

  it("bounds each wave by what concurrencyOf says for its steps", async () => {
    const peaks = new Map<number, number>();
    let running = 0;
    const steps = [
      ...Array.from({ length: 6 }, (_, i) => step(`a${i}`, 0)),
      ...Array.from({ length: 6 }, (_, i) => step(`b${i}`, 1)),
    ];
    await runSteps(
      steps,
      async (s) => {
        running++;
        peaks.set(s.wave, Math.max(peaks.get(s.wave) ?? 0, running));
        await sleep(5);
        running--;
      },
      { concurrencyOf: (s) => (s.wave === 0 ? 2 : 6) },
    );
    expect(peaks.get(0)).toBe(2);
    expect(peaks.get(1)).toBe(6);
  });

  it("starts a wave only when every step of the earlier waves has finished", async () => {
    const finished: string[] = [];
    const startedAfter: Record<string, string[]> = {};
    await runSteps(
      [step("a", 0), step("b", 0), step("c", 1)],
      async (s) => {
        startedAfter[s.key] = [...finished];
        await sleep(s.key === "a" ? 20 : 1);
        finished.push(s.key);
        if (s.key === "a") throw new Error("a failed, but c does not need it");
      },
      bound(8),
    );
    expect(startedAfter.c?.sort()).toEqual(["a", "b"]);
  });

  it("skips what needs a failed step, transitively and across waves, and runs the rest", async () => {
    const ran: string[] = [];
    const outcomes = await runSteps(
      [step("a"), step("b", 0, ["a"]), step("c", 1, ["b"]), step("d", 1)],
      async (s) => {
        ran.push(s.key);
        if (s.key === "a") throw new Error("boom");
      },
      bound(4),
    );
    expect(outcomes.get("a")?.status).toBe("failed");
    expect(outcomes.get("b")).toEqual({ key: "b", status: "skipped", because: "a" });
    expect(outcomes.get("c")).toEqual({ key: "c", status: "skipped", because: "b" });
    expect(outcomes.get("d")?.status).toBe("ok");
    expect(ran.sort()).toEqual(["a", "d"]);
  });

  it("runs a step only after the steps it needs in its own wave", async () => {
    const order: string[] = [];
    await runSteps(
      [step("port", 0, ["bridge"]), step("bridge", 0)],
      async (s) => {
        await sleep(s.key === "bridge" ? 10 : 0);
        order.push(s.key);
      },
      bound(8),
    );
    expect(order).toEqual(["bridge", "port"]);
  });

  it("runs the waves in ascending order whatever order the steps come in", async () => {
    const order: number[] = [];
    await runSteps(
      [step("w3", 3), step("w1", 1), step("w10", 10), step("w0", 0), step("w2", 2)],
      async (s) => {
        order.push(s.wave);
      },
      bound(8),
    );
    expect(order).toEqual([0, 1, 2, 3, 10]);
  });

  it("starts and reports a step with several needs once, after all of them have finished", async () => {
    const finished: string[] = [];
    const starts: Record<string, string[][]> = {};
    const reported: string[] = [];
    const outcomes = await runSteps(
      [step("join", 0, ["quick", "slow"]), step("quick", 0), step("slow", 0)],
      async (s) => {
        starts[s.key] = [...(starts[s.key] ?? []), [...finished]];
        await sleep(s.key === "slow" ? 30 : 1);
        finished.push(s.key);
      },
      { ...bound(8), onOutcome: (outcome) => reported.push(`${outcome.key} ${outcome.status}`) },
    );
    expect(starts.join).toEqual([["quick", "slow"]]);
    expect(outcomes.get("join")?.status).toBe("ok");
    // Each step is reported once: a step is not skipped while a need is still running.
    expect(reported).toEqual(["quick ok", "slow ok", "join ok"]);
  });

  it("skips, rather than runs, a step whose need no step of the plan fulfils", async () => {
    const ran: string[] = [];
    const outcomes = await runSteps(
      [step("a", 0, ["missing"]), step("b", 1, ["gone"])],
      async (s) => {
        ran.push(s.key);
      },
      bound(2),
    );
    expect(ran).toEqual([]);
    expect(outcomes.get("a")).toEqual({ key: "a", status: "skipped", because: "missing" });
    expect(outcomes.get("b")).toEqual({ key: "b", status: "skipped", because: "gone" });
  });

  it("returns at once for an empty plan and refuses a cycle", async () => {
    expect((await runSteps([], async () => {}, bound(1))).size).toBe(0);
    await expect(
      runSteps([step("a", 0, ["b"]), step("b", 0, ["a"])], async () => {}, bound(1)),
    ).rejects.toThrow("bug: the plan has a dependency cycle: a → b → a");
  });

  it("rejects with the error of an outcome listener that throws, after a step or a skip", async () => {
    const listenerFails = (key: string) => ({
      ...bound(2),
      onOutcome: (outcome: { key: string }) => {
        if (outcome.key === key) throw new Error(`could not record ${key}`);
      },
    });
    await expect(
      runSteps([step("a"), step("b", 0, ["a"])], async () => {}, listenerFails("a")),
    ).rejects.toThrow("could not record a");
    await expect(
      runSteps([step("b", 0, ["missing"])], async () => {}, listenerFails("b")),
    ).rejects.toThrow("could not record b");
  });
});
