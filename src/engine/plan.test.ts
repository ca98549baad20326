import { describe, expect, it } from "vitest";
import { buildPlan, summarize } from "./plan.js";
import { createAction, deleteAction, label } from "./testing.js";

const order = ["network", "lxc", "nftables"];
const create = createAction;
const remove = deleteAction;

describe("buildPlan", () => {
  it("orders deletes in reverse plugin order before creates in plugin order", () => {
    const plan = buildPlan(
      [
        create("nftables", "t"),
        remove("network", "br9"),
        create("network", "br0"),
        remove("nftables", "old"),
        create("lxc", "ct1"),
      ],
      order,
    );
    expect(plan.steps.map((s) => label(s.key))).toEqual([
      "delete:nftables:old",
      "delete:network:br9",
      "create:network:br0",
      "create:lxc:ct1",
      "create:nftables:t",
    ]);
  });

  it("puts each plugin and direction in its own wave, in run order", () => {
    const plan = buildPlan(
      [
        create("network", "a"),
        create("network", "b"),
        create("lxc", "c"),
        remove("lxc", "d"),
        remove("network", "e"),
      ],
      order,
    );
    const wave = (id: string) => plan.steps.find((s) => s.action.id === id)?.wave ?? Number.NaN;
    expect(wave("a")).toBe(wave("b"));
    expect(wave("d")).toBeLessThan(wave("e"));
    expect(wave("e")).toBeLessThan(wave("a"));
    expect(wave("a")).toBeLessThan(wave("c"));
  });

  it("resolves needs to the actions on the named resources", () => {
    const plan = buildPlan(
      [create("network", "br0"), create("network", "port1", ["network/br0"])],
      order,
    );
    expect(plan.steps.find((s) => s.action.id === "port1")?.needs.map(label)).toEqual([
      "create:network:br0",
    ]);
  });

  it("makes the create of a replacement need its delete", () => {
    const plan = buildPlan([create("lxc", "ct1"), remove("lxc", "ct1")], order);
    expect(plan.steps.map((s) => label(s.key))).toEqual(["delete:lxc:ct1", "create:lxc:ct1"]);
    expect(plan.steps[1]?.needs.map(label)).toEqual(["delete:lxc:ct1"]);
  });

  it("makes a need on a replaced resource wait for its delete and its create", () => {
    // If the bridge's re-create fails, the container that needs the bridge is skipped.
    const plan = buildPlan(
      [create("lxc", "ct1", ["network/br0"]), create("network", "br0"), remove("network", "br0")],
      order,
    );
    expect(plan.steps.find((s) => s.action.id === "ct1")?.needs.map(label)).toEqual([
      "delete:network:br0",
      "create:network:br0",
    ]);
  });

  it("keeps the part of a need an earlier wave meets, and drops the later one", () => {
    // The container's delete (wave of lxc deletes) runs after the table's delete and before
    // its re-create: it waits for the delete only.
    const plan = buildPlan(
      [remove("lxc", "ct1", ["nftables/t"]), remove("nftables", "t"), create("nftables", "t")],
      order,
    );
    expect(plan.steps.find((s) => s.action.id === "ct1")?.needs.map(label)).toEqual([
      "delete:nftables:t",
    ]);
  });

  it("does not make an action wait for itself when it names its own resource", () => {
    const plan = buildPlan([create("network", "br0", ["network/br0"])], order);
    expect(plan.steps[0]?.needs).toEqual([]);
  });

  it("rejects a need that only a later wave could meet as a bug", () => {
    expect(() =>
      buildPlan([create("network", "br0", ["lxc/ct1"]), create("lxc", "ct1")], order),
    ).toThrow(/bug: create network thing br0 needs lxc thing ct1, whose actions all run after it/);
  });

  it("rejects two actions of one kind on one resource as a bug", () => {
    expect(() => buildPlan([create("lxc", "a"), create("lxc", "a")], order)).toThrow(
      /two create actions/,
    );
  });

  it("counts the plan", () => {
    expect(summarize([create("lxc", "a"), remove("lxc", "b"), create("lxc", "c")])).toEqual({
      create: 2,
      modify: 0,
      delete: 1,
    });
  });
});
