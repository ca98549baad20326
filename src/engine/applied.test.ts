/**
 * What an apply returns (`Applied.recorded`: what the action produced that its plan could not
 * know) is written into the action's `ok` ledger record; an apply that returns nothing leaves
 * the record as it was. And each plugin's query is told its section.
 */
import { describe, expect, it } from "vitest";
import { memoryLedger, quietCtx } from "../../test/support/engine.js";
import { applyPlan, planState } from "./reconcile.js";
import { createAction, emptySections, fakePlugin } from "./testing.js";

describe("an apply's recorded result", () => {
  it("goes into its ok record; nothing is added for an apply that returns nothing", async () => {
    const placed = fakePlugin("lxc", [createAction("lxc", "ct1")], async () => ({
      recorded: { location: "node2" },
    }));
    const plain = fakePlugin("network", [createAction("network", "br0")]);
    const ctx = quietCtx();
    const planned = await planState(emptySections("lxc", "network"), [placed, plain], ctx);
    const ledger = memoryLedger();
    await applyPlan(planned, ledger, ctx, {});
    const ok = (target: string) =>
      ledger.records.find((r) => r.target === target && r.status === "ok");
    expect(ok("ct1")?.changes).toEqual({ location: "node2" });
    expect(ok("br0")).not.toHaveProperty("changes");
  });

  it("each plugin's query gets its own section of the file", async () => {
    const seen: unknown[] = [];
    const plugin = {
      ...fakePlugin("lxc", []),
      query: async (_ctx: unknown, section?: unknown) => {
        seen.push(section);
        return {};
      },
    };
    const document = { ...emptySections("lxc"), sections: new Map([["lxc", { remote: "r" }]]) };
    await planState(document, [plugin], quietCtx());
    expect(seen).toEqual([{ remote: "r" }]);
  });
});
