/**
 * Adoption as the engine enforces it for every plugin (src/plugin.ts Adoption): an action on an
 * object op did not create refuses the plan, at the object's entry, unless the entry adopts it
 * or the run has --adopt; an allowed one is planned, shown and recorded as `adopt`. In-memory
 * plugins and ledger; each plugin's own tests show which of its actions carry an adoption.
 */
import { describe, expect, it } from "vitest";
import { memoryLedger, quietCtx } from "../../test/support/engine.js";
import { renderPlan, renderSummary } from "../cli/output.js";
import { OpError } from "../errors.js";
import { type Action, verbOf } from "../plugin.js";
import { driftRecords } from "./drift.js";
import { adoptionProblems, applyPlan, planState } from "./reconcile.js";
import { deleteAction, emptySections, fakePlugin, modifyAction } from "./testing.js";

const where = "/plugins/net/interfaces/2";
const adopting = (allowed: boolean): Action => ({
  ...modifyAction("net", "br0"),
  reason: "made outside op: mtu 1500 → 9000",
  adopt: { path: where, allowed },
});
const deleting = (allowed: boolean): Action => ({
  ...deleteAction("net", "old0"),
  adopt: { path: "/plugins/net/interfaces/3", allowed },
});

const plan = (actions: Action[], adopt?: boolean) =>
  planState(
    emptySections("net"),
    [fakePlugin("net", actions)],
    quietCtx({ options: { allowUplink: false, ...(adopt === undefined ? {} : { adopt }) } }),
  );

describe("adoption", () => {
  it("refuses a plan with an adopt the file does not allow, naming the entry and both ways out", async () => {
    const error = await plan([adopting(false), deleting(false)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("invalid-state");
    expect((error as OpError).details).toEqual([
      "/plugins/net/interfaces/2: net thing br0 exists and op did not create it, so op will not take it over unless it is adopted",
      "/plugins/net/interfaces/3: net thing old0 exists and op did not create it, so op will not delete it unless it is adopted",
    ]);
    expect((error as OpError).hint).toBe(
      'add "adopt": true to its entry in the file, or run with --adopt to adopt every object the file names; nothing was changed',
    );
  });

  it("plans it when the entry adopts it, or with --adopt, and refuses only what is not adopted", async () => {
    expect((await plan([adopting(true), deleting(true)])).actions).toHaveLength(2);
    expect((await plan([adopting(false), deleting(false)], true)).actions).toHaveLength(2);
    expect(adoptionProblems([adopting(true), deleting(false)], { allowUplink: false })).toEqual([
      expect.objectContaining({ path: "/plugins/net/interfaces/3" }),
    ]);
    // An action on op's own object carries no adoption and is never refused for it.
    expect(adoptionProblems([modifyAction("net", "mine")], { allowUplink: false })).toEqual([]);
  });

  it("calls a modify that adopts `adopt` in the plan and the ledger; a delete stays a delete", async () => {
    expect(verbOf(adopting(true))).toBe("adopt");
    expect(verbOf(modifyAction("net", "mine"))).toBe("modify");
    expect(verbOf(deleting(true))).toBe("delete");
    const text = renderPlan([adopting(true)]);
    expect(text).toContain("~ adopt net thing br0  (made outside op: mtu 1500 → 9000)");
    expect(renderSummary([adopting(true), modifyAction("net", "mine")])).toBe(
      "Plan: 0 to create, 2 to modify, 0 to delete. 1 of the modifies adopts an object made outside op.",
    );

    const ledger = memoryLedger();
    const report = await applyPlan(await plan([adopting(true)]), ledger, quietCtx(), {});
    expect(report.failed).toBe(0);
    expect(ledger.records.map((r) => [r.action, r.target, r.status])).toEqual([
      ["adopt", "br0", "intent"],
      ["adopt", "br0", "ok"],
    ]);
    // A check that finds it records the drift under the same name.
    expect(driftRecords("r", [adopting(true)]).map((r) => r.action)).toEqual(["adopt"]);
  });
});
