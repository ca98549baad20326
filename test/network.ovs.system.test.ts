/**
 * The network plugin against a real Open vSwitch (ovsdb-server + ovs-vswitchd started by
 * scripts/setup-ovs.sh, userspace datapath). OVS is host-wide, so these tests run on the
 * host's namespace with uniquely prefixed bridge and port names (every plan is checked to
 * touch nothing else before it is applied), and remove them afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ovsDatabaseRef } from "../plugins/network/refs.js";
import { OpError } from "../src/errors.js";
import { addressesOf, ctxFor, host, links, reconcile, uniqueName } from "./support/network.js";

const prefix = uniqueName("optov");
const br = `${prefix}b`;
const br2 = `${prefix}c`;
const p1 = `${prefix}p1`;
const p2 = `${prefix}p2`;
const br3 = `${prefix}d`;
const br4 = `${prefix}e`;
const handPort = `${prefix}h`;
const clash = `${prefix}x`;
// A container veth as the lxc plugin names it (vi<id>); it appears only later in the test.
const containerVeth = `vi9${String(Date.now()).slice(-5)}`;
const subnet = `198.19.${200 + Math.floor(Math.random() * 50)}`;
const ctx = ctxFor(host);

async function vsctl(...args: string[]): Promise<string> {
  return (await host.run("ovs-vsctl", ["--timeout=10", ...args])).stdout.trim();
}

beforeAll(async () => {
  await host.run("sh", ["scripts/setup-ovs.sh"]);
});

afterAll(async () => {
  for (const bridge of [br, br2, br3, br4])
    await host.run("ovs-vsctl", ["--if-exists", "del-br", bridge], { check: false });
  await host.run("ip", ["link", "del", containerVeth], { check: false });
});

describe("network plugin on Open vSwitch", () => {
  it("applies the op-dbus net file as it is and enrols the container veth once it exists", async () => {
    const opDbus = {
      interfaces: [
        {
          name: br,
          type: "ovs-bridge",
          ports: [containerVeth],
          ipv4: { enabled: true, dhcp: false, address: [{ ip: `${subnet}.1`, prefix: 24 }] },
        },
      ],
    };
    const run = await reconcile(opDbus, ctx, { key: "net", onlyPrefix: prefix });
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect(await vsctl("get", "bridge", br, "datapath_type")).toBe("netdev");
    expect(await vsctl("get", "bridge", br, "external_ids:op-managed")).toBe('"true"');
    expect(await vsctl("list-ports", br)).toBe(containerVeth);
    const link = (await links(host)).get(br);
    expect(link?.flags).toContain("UP");
    expect(addressesOf(link)).toEqual([`${subnet}.1/24`]);

    expect(
      (await reconcile(opDbus, ctx, { key: "net", apply: false, onlyPrefix: prefix })).actions,
    ).toEqual([]);

    await host.run("ip", [
      "link",
      "add",
      containerVeth,
      "type",
      "veth",
      "peer",
      "name",
      `${containerVeth}p`,
    ]);
    // vswitchd attaches the device when it appears; wait for it (no timing assertion).
    let error = "";
    for (let i = 0; i < 50; i++) {
      error = await vsctl("get", "interface", containerVeth, "error");
      if (error === "[]") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(error).toBe("[]");
    expect(
      (await reconcile(opDbus, ctx, { key: "net", apply: false, onlyPrefix: prefix })).actions,
    ).toEqual([]);
  });

  const file = (ports: { name: string; tag?: number }[], extra: object[] = []) => ({
    interfaces: [
      { name: br2, type: "ovs-bridge", mtu: 1400, ovs: { ports } },
      { name: p1, type: "ovs-interface", ipv4: { addresses: [`${subnet}.65/26`] } },
      { name: p2, type: "ovs-interface", state: "down" },
      ...extra,
    ],
  });

  it("creates bridges and ports in one transaction, then repairs drift", async () => {
    const requests: { method: string; operations: { op: string }[] }[] = [];
    const counting = ctxFor(host, false, {
      onRequest: (method, params) =>
        requests.push({
          method,
          operations: (params as [string, ...{ op: string }[]]).slice(1) as { op: string }[],
        }),
    });
    const run = await reconcile(file([{ name: p1, tag: 10 }, { name: p2 }]), counting, {
      onlyPrefix: prefix,
    });
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    // One transaction writes (reads are selects; the wait for ovs-vswitchd is a "wait").
    const writes = requests.filter(({ operations }) =>
      operations.some(({ op }) => op !== "select" && op !== "wait"),
    );
    expect(writes).toHaveLength(1);
    expect(requests.every(({ method }) => method === "transact")).toBe(true);
    expect(await vsctl("list-ports", br2)).toBe(`${p1}\n${p2}`);
    expect(await vsctl("get", "port", p1, "tag")).toBe("10");
    expect(await vsctl("get", "interface", p1, "type")).toBe("internal");
    expect(await vsctl("get", "interface", br2, "mtu_request")).toBe("1400");
    expect(addressesOf((await links(host)).get(p1))).toEqual([`${subnet}.65/26`]);

    await vsctl("--", "del-port", br2, p2, "--", "set", "port", p1, "tag=20");
    await host.run("ip", ["link", "set", br2, "down"]);
    const plan = await reconcile(file([{ name: p1, tag: 10 }, { name: p2 }]), ctx, {
      apply: false,
      onlyPrefix: prefix,
    });
    const changes = plan.actions.flatMap((a) =>
      a.kind === "modify" ? a.changes.map((c) => `${a.id} ${c.path}`) : [`${a.kind} ${a.id}`],
    );
    expect(changes.sort()).toEqual([
      `${ovsDatabaseRef.id} port/${br2}/${p1}/tag`,
      `${ovsDatabaseRef.id} port/${br2}/${p2}`,
      `${br2} state`,
    ]);

    const fix = await reconcile(file([{ name: p1, tag: 10 }, { name: p2 }]), ctx, {
      onlyPrefix: prefix,
    });
    expect(fix.failed).toBe(0);
    expect(fix.remaining).toEqual([]);
    expect(await vsctl("list-ports", br2)).toBe(`${p1}\n${p2}`);
    expect(await vsctl("get", "port", p1, "tag")).toBe("10");
  });

  // Pruning is host-wide (every OVS row op created), so on the shared host it is left to the
  // diff fixtures (ovs-drift) and the netns tests; here the file removes what it named.
  it("drops a port op created from a declared bridge, and deletes bridges marked absent", async () => {
    const keepBr = {
      interfaces: [
        {
          name: br,
          type: "ovs-bridge",
          ports: [containerVeth],
          ipv4: { addresses: [`${subnet}.1/24`] },
        },
        { name: br2, type: "ovs-bridge", mtu: 1400, ovs: { ports: [{ name: p1, tag: 10 }] } },
        { name: p1, type: "ovs-interface", ipv4: { addresses: [`${subnet}.65/26`] } },
      ],
    };
    const run = await reconcile(keepBr, ctx, { onlyPrefix: prefix });
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect(await vsctl("list-ports", br2)).toBe(p1);

    // br2 stays but no longer lists p1: its port list is the file's.
    const withoutPort = {
      interfaces: [
        keepBr.interfaces[0],
        { name: br2, type: "ovs-bridge", mtu: 1400, ovs: { ports: [] } },
      ],
    };
    const dropped = await reconcile(withoutPort, ctx, { onlyPrefix: prefix });
    expect(dropped.failed).toBe(0);
    expect(dropped.remaining).toEqual([]);
    expect(await vsctl("list-ports", br2)).toBe("");

    const absent = {
      interfaces: [
        { name: br, type: "ovs-bridge", ensure: "absent" },
        { name: br2, type: "ovs-bridge", ensure: "absent" },
      ],
    };
    const gone = await reconcile(absent, ctx, { onlyPrefix: prefix });
    expect(gone.failed).toBe(0);
    expect(gone.remaining).toEqual([]);
    const bridges = (await vsctl("list-br")).split("\n");
    expect(bridges).not.toContain(br);
    expect(bridges).not.toContain(br2);
    expect((await links(host)).has(p1)).toBe(false);
  });

  it("takes a port added by hand out of an OVS bridge op created, unless exclusive_ports is false", async () => {
    const bridge = (extra: object = {}) => ({
      interfaces: [{ name: br4, type: "ovs-bridge", state: "down", ...extra }],
    });
    expect((await reconcile(bridge(), ctx, { onlyPrefix: prefix })).failed).toBe(0);
    // A port row without a device, as another tool (or a person) may add one.
    await vsctl("add-port", br4, handPort);
    const plan = await reconcile(bridge(), ctx, { apply: false, onlyPrefix: prefix });
    expect(
      plan.actions.flatMap((a) => (a.kind === "modify" ? a.changes.map((c) => c.path) : [])),
    ).toEqual([`port/${br4}/${handPort}`]);
    const open = await reconcile(bridge({ exclusive_ports: false }), ctx, {
      apply: false,
      onlyPrefix: prefix,
    });
    expect(open.actions).toEqual([]);
    const fix = await reconcile(bridge(), ctx, { onlyPrefix: prefix });
    expect(fix.failed).toBe(0);
    expect(fix.remaining).toEqual([]);
    expect(await vsctl("list-ports", br4)).toBe("");
    await vsctl("del-br", br4);
  });

  it("changes nothing when OVSDB refuses the transaction, and shows OVSDB's reason", async () => {
    // A port made by hand (with no device, so no link shows it) under the name of a bridge
    // the file creates: the bridge's own port would share that name, which OVSDB's index on
    // Port names refuses, for the whole transaction.
    await vsctl(
      ...["--", "add-br", br3, "--", "set", "bridge", br3, "datapath_type=netdev"],
      ...["--", "add-port", br3, clash],
    );
    const clashing = {
      interfaces: [
        { name: br2, type: "ovs-bridge", state: "down", ovs: { ports: [{ name: p2 }] } },
        { name: p2, type: "ovs-interface", state: "down" },
        { name: clash, type: "ovs-bridge", state: "down" },
      ],
    };
    const run = await reconcile(clashing, ctx, { onlyPrefix: prefix });
    expect(run.failed).toBe(1);
    const failed = run.records.find((record) => record.status === "failed");
    expect(failed?.target).toBe(ovsDatabaseRef.id);
    expect(failed?.error).toMatch(
      /Open vSwitch refused the transaction \(nothing of it was applied\): .*constraint violation/,
    );
    const bridges = (await vsctl("list-br")).split("\n");
    expect(bridges).not.toContain(br2);
    expect(await vsctl("list-ports", br3)).toBe(clash);
    await vsctl("del-br", br3);
  });

  it("says to start Open vSwitch when OVSDB is not there and the file has OVS bridges", async () => {
    const empty = await mkdtemp(join(tmpdir(), "opt-noovs-"));
    try {
      const noOvs = ctxFor(host, false, { runDir: empty });
      const attempt = reconcile(file([{ name: p1 }, { name: p2 }]), noOvs, { apply: false });
      await expect(attempt).rejects.toThrow(OpError);
      await expect(attempt).rejects.toMatchObject({
        code: "daemon-unavailable",
        hint: expect.stringMatching(/start Open vSwitch/),
      });
      // Without OVS links in the file, the same host is queried fine (no OVS = nothing to do).
      const plain = await reconcile({ interfaces: [] }, noOvs, { apply: false });
      expect(plain.actions).toEqual([]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
