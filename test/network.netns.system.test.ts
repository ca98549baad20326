/**
 * The network plugin against real netlink, inside namespaces each test creates (so the host's
 * links are never touched), through the real engine: create from nothing, re-apply as a no-op,
 * drift by hand, the op-dbus net file, delete and prune, the uplink guard, kernel refusals.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import { createRunner, type Runner } from "../src/exec.js";
import type { Ctx } from "../src/plugin.js";
import { createNetns, type TestNetns } from "./support/netns.js";
import { addressesOf, ctxFor, links, netnsWithCtx, reconcile } from "./support/network.js";

let netns: TestNetns;
let exec: Runner;
let ctx: Ctx;

beforeEach(() => {
  ({ netns, exec, ctx } = netnsWithCtx("net"));
});

afterEach(() => netns.remove());

const lab = {
  interfaces: [
    {
      name: "br0",
      type: "linux-bridge",
      mtu: 1400,
      alias: "lab bridge",
      ipv4: { addresses: [{ ip: "198.18.10.1", prefix: 24 }] },
      ipv6: { addresses: ["2001:db8:10::1/64"] },
      bridge: { ports: ["v0", "v1"] },
    },
    { name: "v0", type: "veth", veth: { peer: "v0p" }, mtu: 1400 },
    { name: "v1", type: "veth", veth: { peer: "v1p" }, mtu: 1500 },
    { name: "v1p", type: "veth", state: "up", ipv4: { addresses: ["198.18.11.2/24"] } },
    {
      name: "mv0",
      type: "macvlan",
      macvlan: { base: "v1p", mode: "bridge" },
      ipv4: { addresses: ["198.18.12.1/24"] },
    },
  ],
  routes: [{ to: "198.18.20.0/24", via: "198.18.10.254", dev: "br0" }],
};

describe("network plugin on real netlink", () => {
  it("creates links from nothing, then a re-apply changes nothing", async () => {
    const first = await reconcile(lab, ctx);
    expect(first.failed).toBe(0);
    expect(first.remaining).toEqual([]);
    expect(first.actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "create 198.18.20.0/24 dev br0",
      "create br0",
      "create mv0",
      "create v0",
      "create v1",
      "create v1p",
    ]);

    const now = await links(exec);
    const br0 = now.get("br0");
    expect(br0?.linkinfo?.info_kind).toBe("bridge");
    expect(br0?.flags).toContain("UP");
    expect(br0?.mtu).toBe(1400);
    expect(br0?.ifalias).toBe("op:network lab bridge");
    expect(addressesOf(br0)).toEqual(["198.18.10.1/24"]);
    expect(addressesOf(br0, "inet6")).toContain("2001:db8:10::1/64");
    expect(now.get("v0")?.master).toBe("br0");
    expect(now.get("v1")?.master).toBe("br0");
    expect(now.get("v0p")?.ifalias).toBeUndefined();
    expect(addressesOf(now.get("v1p"))).toEqual(["198.18.11.2/24"]);
    expect(now.get("mv0")?.linkinfo?.info_kind).toBe("macvlan");
    const { stdout } = await exec.run("ip", ["-j", "route", "show", "198.18.20.0/24"]);
    expect(JSON.parse(stdout)).toMatchObject([
      { gateway: "198.18.10.254", dev: "br0", protocol: "static" },
    ]);

    const again = await reconcile(lab, ctx, { apply: false });
    expect(again.actions).toEqual([]);
  });

  it("detects drift made by hand and repairs it", async () => {
    await reconcile(lab, ctx);
    await exec.run("ip", ["-batch", "-"], {
      input: [
        "addr del 198.18.10.1/24 dev br0",
        "link set v1p down",
        "link set v0 nomaster",
        "link set v1 mtu 1300",
        "addr add 198.18.13.1/24 dev v1", // an extra address on an owned link
      ].join("\n"),
    });

    const plan = await reconcile(lab, ctx, { apply: false });
    const summary = plan.actions.map((a) =>
      a.kind === "modify" ? `${a.id}: ${a.changes.map((c) => c.path).join(",")}` : a.kind,
    );
    // Removing br0's address also made the kernel drop the route through it.
    expect(summary.sort()).toEqual([
      "br0: ipv4",
      "create",
      "v0: master",
      "v1: mtu,ipv4",
      "v1p: state",
    ]);

    const fix = await reconcile(lab, ctx);
    expect(fix.failed).toBe(0);
    expect(fix.remaining).toEqual([]);
    const now = await links(exec);
    expect(addressesOf(now.get("br0"))).toEqual(["198.18.10.1/24"]);
    expect(now.get("v1p")?.flags).toContain("UP");
    expect(now.get("v0")?.master).toBe("br0");
    expect(now.get("v1")?.mtu).toBe(1500);
    expect(addressesOf(now.get("v1"))).toEqual([]);
  });

  it("accepts the op-dbus net format as plugins.net", async () => {
    await exec.run("ip", ["link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"]);
    const opDbus = {
      interfaces: [
        {
          name: "lanbr0",
          type: "bridge",
          ports: ["eth9"],
          ipv4: {
            enabled: true,
            dhcp: false,
            address: [{ ip: "198.18.5.1", prefix: 24 }],
            gateway: "198.18.5.254",
          },
          properties: { mtu: 1450 },
        },
        { name: "eth9p", type: "ethernet", ipv4: { enabled: false } },
      ],
    };
    const run = await reconcile(opDbus, ctx, { key: "net" });
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    const now = await links(exec);
    expect(now.get("lanbr0")?.linkinfo?.info_kind).toBe("bridge");
    expect(now.get("lanbr0")?.mtu).toBe(1450);
    expect(addressesOf(now.get("lanbr0"))).toEqual(["198.18.5.1/24"]);
    expect(now.get("eth9")?.master).toBe("lanbr0");
    expect(now.get("eth9")?.ifalias).toBeUndefined(); // enrolled, not owned
    const { stdout } = await exec.run("ip", ["-j", "route", "show", "default"]);
    expect(JSON.parse(stdout)).toMatchObject([{ gateway: "198.18.5.254", dev: "lanbr0" }]);
    expect((await reconcile(opDbus, ctx, { key: "net", apply: false })).actions).toEqual([]);
  });

  it("prunes what op created, deletes ensure: absent, and ignores links it does not own", async () => {
    await reconcile(lab, ctx);
    await exec.run("ip", ["-batch", "-"], {
      input:
        "link add hand0 type veth peer name hand0p\nlink add gone0 type veth peer name gone0p\naddr add 198.18.14.1/24 dev hand0\n",
    });
    const smaller = {
      interfaces: [
        ...lab.interfaces
          .filter((i) => i.name === "br0")
          .map((i) => ({ ...i, bridge: { ports: ["v0"] } })),
        lab.interfaces.find((i) => i.name === "v0"),
        // Made by hand above: op deletes it only because the entry adopts it.
        { name: "gone0", type: "veth", ensure: "absent", adopt: true },
      ],
      routes: [],
    };
    // Without prune, what op created stays: only what the file marks absent (and the routes of
    // links the file keeps, which carry exactly the file's) goes, and br0 lets v1 go, since the
    // ports of a bridge op created are the file's.
    const kept = await reconcile(smaller, ctx, { apply: false });
    expect(kept.actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "delete 198.18.20.0/24 dev br0",
      "delete gone0",
      "modify br0",
    ]);
    expect(kept.actions.find((a) => a.id === "br0")?.reason).toBe("-v1");
    const run = await reconcile({ ...smaller, prune: true }, ctx);
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect(run.actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "delete 198.18.20.0/24 dev br0",
      "delete gone0",
      "delete mv0",
      "delete v1",
      "delete v1p",
    ]);
    const now = await links(exec);
    for (const name of ["v1", "v1p", "mv0", "gone0", "gone0p"]) expect(now.has(name)).toBe(false);
    expect(addressesOf(now.get("hand0"))).toEqual(["198.18.14.1/24"]);
    expect(now.has("v0")).toBe(true);
  });

  it("refuses to take down or re-address the default-route link unless allowed", async () => {
    await exec.run("ip", ["-batch", "-"], {
      input:
        "link add up0 type veth peer name up0p\nlink set up0 up\naddr add 198.18.30.2/24 dev up0\nroute add default via 198.18.30.1 dev up0\n",
    });
    // up0 is made by hand: every entry adopts it, so what refuses these plans is the uplink guard.
    const down = { interfaces: [{ name: "up0", type: "veth", state: "down", adopt: true }] };
    const refused = reconcile(down, ctx, { apply: false });
    await expect(refused).rejects.toThrow(OpError);
    await expect(refused).rejects.toThrow(/default route \(up0\).*take up0 down/);
    const readdress = {
      interfaces: [
        { name: "up0", type: "veth", adopt: true, ipv4: { addresses: ["198.18.31.2/24"] } },
      ],
    };
    await expect(reconcile(readdress, ctx, { apply: false })).rejects.toThrow(
      /remove address 198\.18\.30\.2\/24 on up0/,
    );
    await expect(
      reconcile(
        { interfaces: [{ name: "up0", type: "veth", ensure: "absent", adopt: true }] },
        ctx,
        {
          apply: false,
        },
      ),
    ).rejects.toThrow(/delete up0/);
    expect((await links(exec)).get("up0")?.flags).toContain("UP");

    const allowed = await reconcile(down, ctxFor(exec, true));
    expect(allowed.failed).toBe(0);
    expect((await links(exec)).get("up0")?.flags).not.toContain("UP");
  });

  it("shows the kernel's refusal and records what was already applied", async () => {
    const file = {
      interfaces: [
        { name: "base0", type: "veth", veth: { peer: "base0p" } },
        { name: "mv9", type: "macvlan", macvlan: { base: "base0" }, mtu: 9000 },
      ],
    };
    const run = await reconcile(file, ctx);
    expect(run.failed).toBe(1);
    const failed = run.records.find((r) => r.status === "failed");
    expect(failed?.target).toBe("mv9");
    expect(failed?.error).toMatch(/kernel refused `link set dev mv9 mtu 9000`: .*Invalid argument/);
    expect(failed?.error).toMatch(
      /already applied: `link add name mv9 link base0 type macvlan mode bridge`/,
    );
    expect(run.records.filter((r) => r.status === "ok").map((r) => r.target)).toEqual(["base0"]);
    const now = await links(exec);
    expect(now.has("base0")).toBe(true);
    expect(now.get("mv9")?.mtu).toBe(1500);
  });

  it("rejects a port that names a missing link and a macvlan on a missing base", async () => {
    const missingPort = {
      interfaces: [{ name: "br5", type: "linux-bridge", bridge: { ports: ["nolink0"] } }],
    };
    await expect(reconcile(missingPort, ctx, { apply: false })).rejects.toThrow(
      /port "nolink0" of bridge "br5" names a link that does not exist/,
    );
    const missingBase = {
      interfaces: [{ name: "mv5", type: "macvlan", macvlan: { base: "nolink0" } }],
    };
    await expect(reconcile(missingBase, ctx, { apply: false })).rejects.toThrow(
      /base "nolink0" of macvlan "mv5" does not exist/,
    );
  });

  it("puts a veth peer in another namespace and sees it as converged", async () => {
    const other = createNetns("peer");
    try {
      const file = {
        interfaces: [{ name: "ct0", type: "veth", veth: { peer: "eth0", netns: other.name } }],
      };
      const run = await reconcile(file, ctx);
      expect(run.failed).toBe(0);
      expect(run.remaining).toEqual([]);
      expect(
        (await links(createRunner({ netns: other.name }))).get("eth0")?.linkinfo?.info_kind,
      ).toBe("veth");
      expect((await reconcile(file, ctx, { apply: false })).actions).toEqual([]);
    } finally {
      other.remove();
    }
  });

  it("leaves a container veth port pending until it exists, then enrols it", async () => {
    const file = {
      interfaces: [{ name: "br6", type: "linux-bridge", bridge: { ports: ["vi100"] } }],
    };
    const first = await reconcile(file, ctx);
    expect(first.failed).toBe(0);
    expect(first.remaining).toEqual([]);
    // What the lxc plugin does later in the same run: the container's host-side veth appears.
    await exec.run("ip", ["link", "add", "vi100", "type", "veth", "peer", "name", "vi100p"]);
    const second = await reconcile(file, ctx);
    expect(second.actions.map((a) => (a.kind === "modify" ? a.changes : a.kind))).toEqual([
      [{ path: "ports", after: "vi100" }],
    ]);
    expect((await links(exec)).get("vi100")?.master).toBe("br6");
  });
});
