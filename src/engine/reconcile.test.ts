/**
 * The engine's own logic with two minimal in-memory plugins standing in for real ones (the
 * real plugins have their own system tests): which expectations between plugins it warns about.
 */
import { describe, expect, it } from "vitest";
import { createRunner } from "../exec.js";
import type { Action, Ctx, Plugin } from "../plugin.js";
import { planState } from "./reconcile.js";

function fakePlugin(name: string, actions: Action[]): Plugin {
  return {
    name,
    query: async () => ({}),
    prepare: async () => ({}),
    diff: () => actions,
    apply: async () => {},
    report: () => ({ columns: [], rows: [] }),
  };
}

function ctxCollectingWarnings(): { ctx: Ctx; warnings: string[] } {
  const warnings: string[] = [];
  const quiet = () => {};
  const ctx: Ctx = {
    exec: createRunner(),
    clock: () => new Date(),
    log: { debug: quiet, info: quiet, warn: (message) => warnings.push(message) },
    cacheDir: undefined,
    options: { allowUplink: false },
  };
  return { ctx, warnings };
}

const container: Action = {
  kind: "create",
  plugin: "lxc",
  id: "ct1",
  after: {},
  reason: "new",
  needs: ["network:br0"],
  expects: ["network:br0"],
};
const bridge: Action = { kind: "create", plugin: "network", id: "br0", after: {}, reason: "new" };
const document = (...names: string[]) => ({
  version: 1,
  sections: new Map(names.map((n) => [n, {}])),
  paths: new Map(names.map((n) => [n, `/plugins/${n}`])),
});

describe("planState", () => {
  it("says nothing when another plugin creates what an action expects in the same run", async () => {
    const { ctx, warnings } = ctxCollectingWarnings();
    const planned = await planState(
      document("network", "lxc"),
      [fakePlugin("network", [bridge]), fakePlugin("lxc", [container])],
      ctx,
    );
    expect(planned.plan.steps.map((s) => s.key)).toEqual(["create:network:br0", "create:lxc:ct1"]);
    expect(warnings).toEqual([]);
  });

  it("warns, naming both, when nothing in the run creates it", async () => {
    const { ctx, warnings } = ctxCollectingWarnings();
    await planState(document("lxc"), [fakePlugin("lxc", [container])], ctx);
    expect(warnings).toEqual([
      "create lxc:ct1 needs network:br0, which is not on the host and which nothing in this run creates: it will fail",
    ]);
  });
});
