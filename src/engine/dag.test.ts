import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { Action } from "../plugin.js";
import { runSteps } from "./dag.js";
import type { PlanStep } from "./plan.js";

const action: Action = { kind: "create", plugin: "p", id: "x", after: {}, reason: "" };
const step = (key: string, after: string[] = [], needs: string[] = []): PlanStep => ({ key, action, wave: 0, after, needs });

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
      3,
    );
    expect(peak).toBe(3);
  });

  it("starts a step only after the steps it comes after", async () => {
    const finished: string[] = [];
    const started: Record<string, string[]> = {};
    await runSteps(
      [step("a"), step("b"), step("c", ["a", "b"])],
      async (s) => {
        started[s.key] = [...finished];
        await sleep(s.key === "a" ? 10 : 1);
        finished.push(s.key);
      },
      8,
    );
    expect(started.c?.sort()).toEqual(["a", "b"]);
  });

  it("skips what needs a failed step, transitively, and runs the rest", async () => {
    const ran: string[] = [];
    const outcomes = await runSteps(
      [step("a"), step("b", [], ["a"]), step("c", [], ["b"]), step("d", ["a"])],
      async (s) => {
        ran.push(s.key);
        if (s.key === "a") throw new Error("boom");
      },
      4,
    );
    expect(outcomes.get("a")?.status).toBe("failed");
    expect(outcomes.get("b")).toEqual({ key: "b", status: "skipped", because: "a" });
    expect(outcomes.get("c")).toEqual({ key: "c", status: "skipped", because: "b" });
    // `after` orders but does not make d depend on a's success.
    expect(outcomes.get("d")?.status).toBe("ok");
    expect(ran.sort()).toEqual(["a", "d"]);
  });

  it("returns at once for an empty plan and refuses a cycle", async () => {
    expect((await runSteps([], async () => {}, 1)).size).toBe(0);
    expect(() => runSteps([step("a", [], ["b"]), step("b", [], ["a"])], async () => {}, 1)).toThrow(/cycle/);
  });
});
