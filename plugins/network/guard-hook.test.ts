/**
 * The uplink guard as the engine runs it (Plugin.guard, after diff): prepare and diff stay
 * pure and refuse nothing; the engine refuses the whole plan, listing every problem, unless
 * --allow-uplink was given.
 */
import { describe, expect, it } from "vitest";
import { planState } from "../../src/engine/reconcile.js";
import { OpError } from "../../src/errors.js";
import type { NetworkSection } from "../../src/generated/network.js";
import { quietCtx } from "../../test/support/engine.js";
import { networkPlugin } from "./index.js";
import { parseLive } from "./query.js";

/** A host whose default route is on eth0, a dummy link op owns (so the file may delete it). */
const base = parseLive(
  [
    {
      ifname: "eth0",
      flags: ["UP"],
      mtu: 1500,
      ifalias: "op:network",
      linkinfo: { info_kind: "dummy" },
      addr_info: [{ family: "inet", local: "198.18.0.2", prefixlen: 24 }],
    },
  ],
  { 4: [{ dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] }], 6: [] },
  { available: true, bridges: [] },
);

describe("the network plugin's guard hook", () => {
  const section: NetworkSection = {
    interfaces: [{ name: "eth0", type: "dummy", ensure: "absent" }],
  } as NetworkSection;
  const plan = (allowUplink: boolean) => {
    const plugin = { ...networkPlugin, query: async () => base };
    const document = {
      version: 1,
      sections: new Map([["network", section as unknown]]),
      paths: new Map([["network", "/plugins/network"]]),
    };
    return planState(document, [plugin], quietCtx({ options: { allowUplink } }));
  };

  it("leaves prepare and diff pure: the plan deletes the uplink only with --allow-uplink", async () => {
    expect(base.uplinks).toEqual(["eth0"]);
    const planned = await plan(true);
    expect(planned.actions.map((a) => `${a.kind} ${a.id}`)).toEqual(["delete eth0"]);
    // The same pair diffed again is the same plan: no memo, no refusal inside diff.
    const [prepared] = planned.prepared;
    expect(networkPlugin.diff(prepared?.desired as never, base)).toEqual(planned.actions);
  });

  it("refuses the plan in the engine, naming the action and the --allow-uplink way out", async () => {
    const error = await plan(false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toBe(
      "refusing the plan: network link eth0: it touches the link carrying the host's default route (eth0): it would delete eth0",
    );
    expect((error as OpError).exitCode).toBe(1);
    expect((error as OpError).hint).toMatch(/run again with --allow-uplink/);
  });
});
