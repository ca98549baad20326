/**
 * The engine's own logic with two minimal in-memory plugins standing in for real ones (the
 * real plugins have their own system tests): which expectations between plugins it warns about.
 */
import { describe, expect, it } from "vitest";
import { quietCtx } from "../../test/support/engine.js";
import type { Action, Ctx, Plugin } from "../plugin.js";
import { planState } from "./reconcile.js";
import { createAction, emptySections, fakePlugin, label, ref } from "./testing.js";

function ctxCollectingWarnings(): { ctx: Ctx; warnings: string[] } {
  const warnings: string[] = [];
  const quiet = () => {};
  const ctx: Ctx = quietCtx({
    log: { debug: quiet, info: quiet, warn: (message) => warnings.push(message) },
  });
  return { ctx, warnings };
}

const container: Action = {
  ...createAction("lxc", "ct1", ["network/br0"]),
  expects: [ref("network/br0")],
};
const bridge = createAction("network", "br0");
const document = emptySections;

describe("planState", () => {
  it("says nothing when another plugin creates what an action expects in the same run", async () => {
    const { ctx, warnings } = ctxCollectingWarnings();
    const planned = await planState(
      document("network", "lxc"),
      [fakePlugin("network", [bridge]), fakePlugin("lxc", [container])],
      ctx,
    );
    expect(planned.plan.steps.map((s) => label(s.key))).toEqual([
      "create:network:br0",
      "create:lxc:ct1",
    ]);
    expect(warnings).toEqual([]);
  });

  it("warns, naming both, when nothing in the run creates it", async () => {
    const { ctx, warnings } = ctxCollectingWarnings();
    await planState(document("lxc"), [fakePlugin("lxc", [container])], ctx);
    expect(warnings).toEqual([
      "create lxc thing ct1 needs network thing br0, which is not on the host and which nothing in this run creates: it will fail",
    ]);
  });

  it("refuses, as a bug, an action on a resource kind its plugin does not declare", async () => {
    const { ctx } = ctxCollectingWarnings();
    const stray = { ...createAction("network", "br0"), resource: "bridge" };
    const error = await planState(document("network"), [fakePlugin("network", [stray])], ctx).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe(
      "bug: plugin network planned create network bridge br0, not a resource kind it declares",
    );
    const foreign = createAction("lxc", "ct1");
    const wrongPlugin = await planState(
      document("network"),
      [fakePlugin("network", [foreign])],
      ctx,
    ).catch((e: unknown) => e);
    expect((wrongPlugin as Error).message).toMatch(
      /bug: plugin network planned create lxc thing ct1/,
    );
  });

  it("starts prepare while the query still reads, and hands it the query's result", async () => {
    const { ctx } = ctxCollectingWarnings();
    const events: string[] = [];
    let answer: (live: unknown) => void = () => {};
    const plugin: Plugin = {
      ...fakePlugin("network", []),
      query: () => {
        events.push("query started");
        return new Promise((resolve) => {
          answer = resolve;
        });
      },
      normalise: async () => {
        events.push("prepare started");
        return {};
      },
      resolve: (_normalised, host) => {
        events.push(`prepare got ${JSON.stringify(host)}`);
        return { from: host };
      },
    };
    const planning = planState(document("network"), [plugin], ctx);
    await new Promise((resolve) => setImmediate(resolve));
    events.push("query answers");
    answer({ links: 3 });
    const planned = await planning;
    expect(events).toEqual([
      "query started",
      "prepare started",
      "query answers",
      'prepare got {"links":3}',
    ]);
    expect(planned.prepared[0]?.desired).toEqual({ from: { links: 3 } });
  });

  it("reports a failed query rather than the prepare that failed without it", async () => {
    const { ctx } = ctxCollectingWarnings();
    const plugin: Plugin = {
      ...fakePlugin("network", []),
      query: async () => {
        throw new Error("the host could not be read");
      },
      resolve: () => ({}),
    };
    const failedPrepare: Plugin = {
      ...plugin,
      normalise: async () => {
        throw new Error("the file is wrong");
      },
    };
    for (const each of [plugin, failedPrepare]) {
      const error = await planState(document("network"), [each], ctx).catch((e: unknown) => e);
      expect((error as Error).message).toContain("the host could not be read");
    }
  });
});
