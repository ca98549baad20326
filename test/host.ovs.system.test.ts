/**
 * The one Open vSwitch model (src/host/ovs.ts) against the real ovsdb-server and ovs-vswitchd
 * the suite starts (scripts/setup-ovs.sh): the network plugin and the lxc plugin both reach
 * OVS only through ctx.host.ovs, so a model that counts its requests sees the work of both,
 * and a model pointed at an empty run directory leaves both without OVS. OVS is host-wide:
 * every bridge and port here is uniquely prefixed and removed afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrol, readHostNet } from "../plugins/lxc/host.js";
import { queryNetwork } from "../plugins/network/query.js";
import type { Ctx } from "../src/plugin.js";
import { ctxFor, host, reconcile, uniqueName } from "./support/network.js";

const prefix = uniqueName("opth");
const bridge = `${prefix}b`;
const veth = `${prefix}v`;

/** Each transaction a model sent: its first operation's comment, if any, and its operations. */
interface Sent {
  comment?: string;
  ops: string[];
}

function countingCtx(): { ctx: Ctx; sent: Sent[] } {
  const sent: Sent[] = [];
  const ctx = ctxFor(host, false, {
    onRequest: (method, params) => {
      if (method !== "transact") return;
      const operations = (params as unknown[]).slice(1) as { op: string; comment?: string }[];
      const comment = operations.find((operation) => operation.op === "comment")?.comment;
      sent.push({
        ...(comment === undefined ? {} : { comment }),
        ops: operations.map((o) => o.op),
      });
    },
  });
  return { ctx, sent };
}

async function vsctl(...args: string[]): Promise<string> {
  return (await host.run("ovs-vsctl", ["--timeout=10", ...args])).stdout.trim();
}

beforeAll(async () => {
  await host.run("sh", ["scripts/setup-ovs.sh"]);
});

afterAll(async () => {
  await host.run("ovs-vsctl", ["--if-exists", "del-br", bridge], { check: false });
  await host.run("ip", ["link", "del", veth], { check: false });
});

describe("one Open vSwitch model for both plugins", () => {
  it("carries the network plugin's bridge and the lxc plugin's port, and both read it back", async () => {
    const { ctx, sent } = countingCtx();
    const run = await reconcile(
      { interfaces: [{ name: bridge, type: "ovs-bridge", ovs: { ports: [] } }] },
      ctx,
      { onlyPrefix: prefix },
    );
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect(sent.some((s) => s.comment === "op apply (network plugin)")).toBe(true);

    // The lxc plugin sees that bridge as Open vSwitch's through the same model...
    const net = await readHostNet(ctx.host);
    expect(net.bridges[bridge]).toBe("ovs");

    // ...and enrols a (container) veth in it through the same model.
    await host.run("ip", ["link", "add", veth, "type", "veth", "peer", "name", `${veth}p`]);
    await enrol({ exec: ctx.exec, ovs: ctx.host.ovs }, veth, { name: bridge, kind: "ovs" }, {});
    expect(sent.some((s) => s.comment === `op apply (lxc plugin): ${veth}`)).toBe(true);
    // Committed and waited for: ovs-vswitchd has applied it.
    expect(await vsctl("list-ports", bridge)).toBe(veth);
    expect((await readHostNet(ctx.host)).ovs.portBridge.get(veth)).toBe(bridge);

    // The network plugin's own read, through the model, shows the lxc plugin's port.
    const live = await queryNetwork(ctx);
    expect(live.ovs.available).toBe(true);
    const ours = live.ovs.available ? live.ovs.bridges.find((b) => b.name === bridge) : undefined;
    expect(ours?.ports.map((port) => port.name)).toEqual([veth]);
    // Every change of both plugins was one transaction plus the wait for ovs-vswitchd.
    const writes = sent.filter((s) => s.ops.includes("comment"));
    expect(writes).toHaveLength(2);
    expect(sent.filter((s) => s.ops.includes("wait"))).toHaveLength(2);
  });

  it("leaves both plugins without OVS when the model points at a run directory with no socket", async () => {
    const empty = await mkdtemp(join(tmpdir(), "opt-host-noovs-"));
    try {
      const ctx = ctxFor(host, false, { runDir: empty });
      expect(ctx.host.ovs.present()).toBe(false);
      expect(await ctx.host.ovs.topology()).toBeUndefined();
      expect((await readHostNet(ctx.host)).bridges[bridge]).toBeUndefined();
      const live = await queryNetwork(ctx);
      expect(live.ovs).toEqual({
        available: false,
        reason: `ovs-vswitchd is not running (no pid file in ${empty})`,
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
