/**
 * The network plugin's pre-images (preimage.ts), pure: which links a run's actions put in the
 * scope (a moved port's old and new bridges, a veth's peer, a route's link, an OVS
 * transaction's bridges and ports), and the section written for them, with `ensure: absent`
 * for what is missing and refusals for what op export cannot write.
 */
import { describe, expect, it } from "vitest";
import { networkImage, networkScope } from "./preimage.js";
import { liveLink } from "./testing.js";
import type { NetLive, NetworkAction } from "./types.js";

const owned = { owned: true, alias: "op:network" };

const live: NetLive = {
  links: [
    liveLink("br-a", { ...owned, type: "linux-bridge", kind: "bridge", ipv4: ["198.18.40.1/24"] }),
    liveLink("br-b", { ...owned, type: "linux-bridge", kind: "bridge" }),
    liveLink("v0", { ...owned, peer: "v0p", master: "br-a" }),
    liveLink("v0p", { peer: "v0" }),
    liveLink("lo", { type: "other", kind: "" }),
    liveLink("vx", { ...owned, peerElsewhere: true }),
  ],
  ovs: { available: false, reason: "not installed" },
  routes: [
    {
      to: "198.18.50.0/24",
      via: "198.18.40.254",
      dev: "br-a",
      metric: 0,
      family: 4,
      protocol: "static",
    },
  ],
  uplinks: [],
  defaultRoutes: [],
};

const moveV0: NetworkAction = {
  kind: "modify",
  plugin: "network",
  resource: "link",
  id: "v0",
  before: live.links[2] as never,
  after: { name: "v0", type: "veth", master: "br-b" },
  changes: [{ path: "master", before: "br-a", after: "br-b" }],
  reason: "master",
};

describe("networkScope", () => {
  it("takes a moved port with its peer and both bridges", () => {
    expect(networkScope([moveV0], live)).toEqual({
      links: { v0: "veth", v0p: "veth", "br-a": "linux-bridge", "br-b": "linux-bridge" },
    });
  });

  it("takes a created link by the type its action gives, and a route's link", () => {
    const created: NetworkAction = {
      kind: "create",
      plugin: "network",
      resource: "link",
      id: "new0",
      after: { link: { name: "new0", type: "macvlan" }, enrol: [] },
      reason: "new",
    };
    const route: NetworkAction = {
      kind: "delete",
      plugin: "network",
      resource: "route",
      id: "198.18.50.0/24 dev br-a",
      before: live.routes[0] as never,
      reason: "gone",
    };
    expect(networkScope([created, route], live).links).toEqual({
      new0: "macvlan",
      "br-a": "linux-bridge",
    });
  });

  it("takes an OVS transaction's bridges and the internal ports it adds", () => {
    const ovs: NetworkAction = {
      kind: "modify",
      plugin: "network",
      resource: "ovs-db",
      id: "Open vSwitch",
      before: [],
      after: [],
      changes: [
        {
          path: "bridge/ob",
          table: "bridge",
          bridge: "ob",
          op: "add",
          after: { datapath: "system" },
        },
        {
          path: "port/ob/oi",
          table: "port",
          bridge: "ob",
          port: "oi",
          op: "add",
          after: { internal: true, from: "oc" },
        },
      ],
      reason: "ovs",
    };
    expect(networkScope([ovs], live).links).toEqual({
      ob: "ovs-bridge",
      oi: "ovs-interface",
      oc: "ovs-bridge",
    });
  });
});

describe("networkImage", () => {
  it("writes the scope's links as export does, their routes, and absent for what is missing", () => {
    const image = networkImage(
      { links: { "br-a": "linux-bridge", v0: "veth", v0p: "veth", gone: "veth" } },
      live,
    );
    expect(image.refused).toEqual([]);
    const section = image.section as { interfaces: { name: string }[]; routes: unknown[] };
    expect(section.interfaces.map((iface) => iface.name)).toEqual(["br-a", "v0", "v0p", "gone"]);
    expect(section.interfaces[0]).toMatchObject({
      bridge: { ports: ["v0"] },
      ipv4: { addresses: ["198.18.40.1/24"] },
    });
    expect(section.interfaces[3]).toEqual({ name: "gone", type: "veth", ensure: "absent" });
    expect(section.routes).toEqual([
      { to: "198.18.50.0/24", via: "198.18.40.254", dev: "br-a", metric: 0 },
    ]);
  });

  it("refuses a link export cannot write, naming it, and a NIC that is gone", () => {
    const image = networkImage({ links: { vx: "veth", eth9: "ethernet" } }, live);
    expect(image.refused).toEqual([
      expect.stringContaining("veth vx: its peer is in another network namespace"),
      "ethernet eth9: gone, and op cannot make a NIC again",
    ]);
  });

  it("has no section for an empty scope", () => {
    expect(networkImage({ links: {} }, live)).toEqual({ section: undefined, refused: [] });
  });
});
