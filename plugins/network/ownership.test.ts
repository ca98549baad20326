/**
 * Ownership and pruning decisions of the diff, one condition at a time (the fixtures in
 * fixtures/ show whole hosts): what op deletes, replaces or takes out of a bridge, and what it
 * must leave alone. Each test pairs a case that acts with its near miss that must not.
 */
import { describe, expect, it } from "vitest";
import { containerVeths } from "../lxc/veths.js";
import { linesOf } from "./apply.js";
import { diffNetwork } from "./diff.js";
import { linkRef } from "./refs.js";
import { liveLink } from "./testing.js";
import type { DesiredLink, LiveLink, LiveOvsBridge, NetDesired, NetLive } from "./types.js";

const link = liveLink;
const owned = (name: string, fields: Partial<LiveLink> = {}): LiveLink =>
  link(name, { owned: true, alias: "op:network", ...fields });

function live(links: LiveLink[], bridges?: LiveOvsBridge[]): NetLive {
  return {
    links,
    ovs: bridges ? { available: true, bridges } : { available: false, reason: "off" },
    routes: [],
    uplinks: [],
    defaultRoutes: [],
  };
}

function desired(links: DesiredLink[], fields: Partial<NetDesired> = {}): NetDesired {
  return {
    links,
    absent: [],
    prune: false,
    ovs: [],
    routes: [],
    pending: [],
    entries: {},
    ...fields,
  };
}

const plan = (want: NetDesired, host: NetLive): string[] =>
  diffNetwork(want, host).map((a) => `${a.kind} ${a.id}: ${a.reason}`);

const bridge = (name: string, fields: Partial<DesiredLink> = {}): DesiredLink => ({
  name,
  type: "linux-bridge",
  state: "up",
  master: null,
  ports: [],
  ...fields,
});

describe("pruning", () => {
  const host = live([owned("v0", { peer: "v0p" }), owned("v0p", { peer: "v0" }), owned("gone0")]);
  const v0: DesiredLink = {
    name: "v0",
    type: "veth",
    state: "up",
    master: null,
    veth: { peer: "v0p" },
  };

  it("deletes what op created and the file left only with prune, never a kept veth's peer", () => {
    expect(plan(desired([v0], { prune: true }), host)).toEqual([
      "delete gone0: created by op, no longer in the file (prune)",
    ]);
    expect(plan(desired([v0]), host)).toEqual([]);
  });

  it("keeps the live peer of a veth the file declares without its peer", () => {
    const bare: DesiredLink = { name: "v0", type: "veth", state: "up", master: null };
    expect(plan(desired([bare], { prune: true }), host)).toEqual([
      "delete gone0: created by op, no longer in the file (prune)",
    ]);
  });

  it("keeps the link a veth is about to take as its peer", () => {
    // v0 is re-made with peer new0; an owned new0 left from another pair is not pruned first.
    const remade: DesiredLink = { ...v0, veth: { peer: "new0" } };
    const stale = live([owned("v0", { peer: "v0p" }), owned("v0p", { peer: "v0" }), owned("new0")]);
    expect(plan(desired([remade], { prune: true }), stale)).toEqual([
      "delete v0: replaced: veth peer v0p → new0",
      "create v0: replaces the link of the same name (cannot change in place)",
    ]);
  });

  it("never prunes a link op did not create", () => {
    expect(
      plan(desired([v0], { prune: true }), live([...host.links.slice(0, 2), link("gone0")])),
    ).toEqual([]);
  });

  it("deletes a link marked absent once, even when prune would too, and whoever made it", () => {
    expect(plan(desired([v0], { prune: true, absent: ["gone0"] }), host)).toEqual([
      "delete gone0: ensure: absent",
    ]);
    expect(plan(desired([], { absent: ["hand0"] }), live([link("hand0")]))).toEqual([
      "delete hand0: ensure: absent",
    ]);
  });

  it("orders a bridge's delete after its ports' and does not take a deleted port out first", () => {
    const host = live([
      owned("br0", { type: "linux-bridge", kind: "bridge" }),
      owned("p0", { master: "br0" }),
    ]);
    const actions = diffNetwork(desired([], { prune: true }), host);
    expect(actions.map((a) => [a.id, a.needs ?? []])).toEqual([
      ["br0", [linkRef("p0")]],
      ["p0", []],
    ]);
    // br0 kept, p0 pruned: p0 goes with its delete, br0 has nothing to take out.
    expect(plan(desired([bridge("br0")], { prune: true }), host)).toEqual([
      "delete p0: created by op, no longer in the file (prune)",
    ]);
  });
});

describe("replacing", () => {
  it("replaces a link op created whose peer changed, never one it did not", () => {
    const v0: DesiredLink = {
      name: "v0",
      type: "veth",
      state: "up",
      master: null,
      veth: { peer: "new0" },
    };
    expect(plan(desired([v0]), live([owned("v0", { peer: "old0" })]))).toEqual([
      "delete v0: replaced: veth peer old0 → new0",
      "create v0: replaces the link of the same name (cannot change in place)",
    ]);
    expect(plan(desired([v0]), live([link("v0", { peer: "old0" })]))).toEqual([]);
  });
});

describe("foreign ports of a Linux bridge", () => {
  const host = live([
    owned("br0", { type: "linux-bridge", kind: "bridge" }),
    link("hand0", { master: "br0" }),
    link("web0", { master: "br0" }),
    link("decl0", { master: "br0" }),
  ]);
  const decl0: DesiredLink = { name: "decl0", type: "veth", state: "up", master: null };

  it("takes out a port the file does not list; a declared link leaves by its own master", () => {
    expect(plan(desired([bridge("br0"), decl0]), host)).toEqual([
      "modify br0: -hand0, -web0",
      "modify decl0: leave br0",
    ]);
  });

  it("leaves the ports of a bridge op did not create, or that says exclusive_ports: false", () => {
    const theirs = live([
      { ...(host.links[0] as LiveLink), owned: false, alias: undefined as never },
      ...host.links.slice(1),
    ]);
    expect(plan(desired([bridge("br0"), decl0]), theirs)).toEqual(["modify decl0: leave br0"]);
    expect(plan(desired([bridge("br0", { exclusivePorts: false }), decl0]), host)).toEqual([
      "modify decl0: leave br0",
    ]);
  });

  it("leaves a container veth the lxc section puts on this bridge, not on another", () => {
    const guests = containerVeths({
      containers: [
        { id: "web", veth: "web0", bridge: "br0" },
        { id: 5, bridge: "br9" },
      ],
    });
    expect(guests).toEqual([
      { veth: "web0", bridge: "br0" },
      { veth: "vi5", bridge: "br9" },
    ]);
    const withGuest = bridge("br0", { guestPorts: ["web0"] });
    expect(plan(desired([withGuest, decl0]), host)).toEqual([
      "modify br0: -hand0",
      "modify decl0: leave br0",
    ]);
  });
});

describe("Open vSwitch ownership", () => {
  const port = (name: string, isOwned: boolean) => ({ name, type: "", owned: isOwned });
  const bridges = (ownedBridge: boolean): LiveOvsBridge[] => [
    {
      name: "ovs0",
      datapath: "netdev",
      owned: ownedBridge,
      ports: [port("mine", true), port("hand", false)],
    },
    {
      name: "ext",
      datapath: "netdev",
      owned: false,
      ports: [port("stale", true), port("theirs", false)],
    },
    { name: "old", datapath: "netdev", owned: true, ports: [] },
  ];
  const ovs0 = (exclusivePorts: boolean) => ({
    name: "ovs0",
    datapath: "netdev" as const,
    ports: [],
    exclusivePorts,
    guestPorts: [],
  });
  const changes = (want: NetDesired, host: NetLive): string[] =>
    diffNetwork(want, host).flatMap((a) =>
      a.kind === "modify" ? a.changes.map((c) => c.path) : [],
    );

  it("on a declared bridge: drops op's unlisted ports, and foreign ones if op made it and it is exclusive", () => {
    expect(changes(desired([], { ovs: [ovs0(true)] }), live([], bridges(true)))).toEqual([
      "port/ovs0/mine",
      "port/ovs0/hand",
    ]);
    expect(changes(desired([], { ovs: [ovs0(false)] }), live([], bridges(true)))).toEqual([
      "port/ovs0/mine",
    ]);
    expect(changes(desired([], { ovs: [ovs0(true)] }), live([], bridges(false)))).toEqual([
      "port/ovs0/mine",
    ]);
    const guest = { ...ovs0(true), guestPorts: ["hand"] };
    expect(changes(desired([], { ovs: [guest] }), live([], bridges(true)))).toEqual([
      "port/ovs0/mine",
    ]);
  });

  it("elsewhere: deletes op's rows only with prune, and what the file marks absent always", () => {
    const declared = { ovs: [ovs0(false)] };
    expect(changes(desired([], declared), live([], bridges(true)))).toEqual(["port/ovs0/mine"]);
    expect(changes(desired([], { ...declared, prune: true }), live([], bridges(true)))).toEqual([
      "port/ovs0/mine",
      "port/ext/stale",
      "bridge/old",
    ]);
    expect(
      changes(desired([], { ...declared, absent: ["theirs", "ext"] }), live([], bridges(true))),
    ).toEqual(["port/ovs0/mine", "bridge/ext"]);
    expect(
      changes(desired([], { ...declared, absent: ["theirs"] }), live([], bridges(true))),
    ).toEqual(["port/ovs0/mine", "port/ext/theirs"]);
  });
});

describe("what a link the file names but op did not create keeps", () => {
  const eth1: DesiredLink = { name: "eth1", type: "ethernet", master: null };

  it("keeps its addresses unless the file gives them; a link op created carries only the file's", () => {
    const host = live([
      link("eth1", { type: "ethernet", kind: "", ipv4: ["198.18.1.2/24"] }),
      owned("br0", { type: "linux-bridge", kind: "bridge", ipv4: ["198.18.2.1/24"] }),
    ]);
    expect(plan(desired([eth1, bridge("br0")]), host)).toEqual(["modify br0: -198.18.2.1/24"]);
  });

  it("stays in a bridge the file does not declare", () => {
    const host = live([link("eth1", { type: "ethernet", kind: "", master: "handbr" })]);
    expect(plan(desired([eth1]), host)).toEqual([]);
    expect(
      plan(
        desired([eth1, bridge("handbr")]),
        live([...host.links, link("handbr", { type: "linux-bridge" })]),
      ),
    ).toEqual(["modify eth1: leave handbr"]);
  });

  it("keeps its static routes: op deletes only those on links it created", () => {
    const host = {
      ...live([
        link("eth1", { type: "ethernet", kind: "" }),
        owned("br0", { type: "linux-bridge", kind: "bridge" }),
      ]),
      routes: [
        { to: "198.18.9.0/24", family: 4 as const, dev: "eth1", metric: 0, protocol: "static" },
        { to: "198.18.8.0/24", family: 4 as const, dev: "br0", metric: 0, protocol: "static" },
        { to: "198.18.7.0/24", family: 4 as const, dev: "br0", metric: 0, protocol: "boot" },
      ],
    };
    expect(plan(desired([eth1, bridge("br0")]), host)).toEqual([
      "delete 198.18.8.0/24 dev br0: static route no longer in the file",
    ]);
  });

  it("prunes a static route as a route: apply deletes that route, not a link", () => {
    const host = {
      ...live([owned("br0", { type: "linux-bridge", kind: "bridge" })]),
      routes: [
        { to: "198.18.8.0/24", family: 4 as const, dev: "br0", metric: 0, protocol: "static" },
      ],
    };
    const actions = diffNetwork(desired([bridge("br0")]), host);
    expect(actions.map((a) => [a.resource, a.kind, a.id])).toEqual([
      ["route", "delete", "198.18.8.0/24 dev br0"],
    ]);
    const [prune] = actions;
    if (prune === undefined || prune.resource === "ovs-db") throw new Error("no route delete");
    expect(linesOf(prune).map((line) => line.text)).toEqual([
      "route del 198.18.8.0/24 dev br0 metric 0 proto static",
    ]);
  });
});

describe("OVS links marked absent", () => {
  it("go with the OVS transaction, never with ip link del", () => {
    const host = live(
      [owned("old0", { type: "ovs-bridge", kind: "openvswitch", alias: undefined as never })],
      [{ name: "old0", datapath: "netdev", owned: true, ports: [] }],
    );
    expect(plan(desired([], { absent: ["old0"] }), host)).toEqual([
      "modify Open vSwitch: one OVSDB transaction: -bridge old0",
    ]);
  });
});

describe("what a declared link keeps and replaces", () => {
  it("prunes a link named like the peer of a veth whose peer lives in another namespace", () => {
    const v1: DesiredLink = {
      name: "v1",
      type: "veth",
      state: "up",
      master: null,
      veth: { peer: "p1", netns: "ns1" },
    };
    const host = live([owned("v1", { peerElsewhere: true }), owned("p1")]);
    expect(plan(desired([v1], { prune: true }), host)).toEqual([
      "delete p1: created by op, no longer in the file (prune)",
    ]);
  });

  it("prunes the old peer of a veth op created that the file now declares as a bridge", () => {
    const host = live([owned("x0", { peer: "x0p" }), owned("x0p", { peer: "x0" })]);
    expect(plan(desired([bridge("x0")], { prune: true }), host)).toEqual([
      "delete x0p: created by op, no longer in the file (prune)",
      "delete x0: replaced: veth → linux-bridge",
      "create x0: replaces the link of the same name (cannot change in place)",
    ]);
  });

  it("deletes a macvlan base after its macvlans", () => {
    const host = live([
      owned("mb0"),
      owned("mv0", { type: "macvlan", kind: "macvlan", base: "mb0", mode: "bridge" }),
    ]);
    const actions = diffNetwork(desired([], { prune: true }), host);
    expect(actions.map((a) => [a.kind, a.id, a.needs ?? []])).toEqual([
      ["delete", "mb0", [linkRef("mv0")]],
      ["delete", "mv0", []],
    ]);
  });

  it("never replaces a link the file declares as ethernet, even one op created", () => {
    const eth: DesiredLink = { name: "e0", type: "ethernet", state: "up", master: null };
    expect(
      plan(desired([eth]), live([owned("e0")])).filter((a) => !a.startsWith("modify")),
    ).toEqual([]);
  });

  it("replaces a veth whose peer should be in another namespace only when it is not", () => {
    const v2: DesiredLink = {
      name: "v2",
      type: "veth",
      state: "up",
      master: null,
      veth: { peer: "p2", netns: "ns1" },
    };
    expect(plan(desired([v2]), live([owned("v2", { peerElsewhere: true })]))).toEqual([]);
    expect(plan(desired([v2]), live([owned("v2", { peer: "p2", peerElsewhere: false })]))).toEqual([
      "delete v2: replaced: veth peer p2 → p2",
      "create v2: replaces the link of the same name (cannot change in place)",
    ]);
  });

  it("replaces a macvlan op created whose base changed, never one it did not", () => {
    const mv: DesiredLink = {
      name: "mv1",
      type: "macvlan",
      state: "up",
      master: null,
      macvlan: { base: "b1", mode: "bridge" },
    };
    const cur = { type: "macvlan" as const, kind: "macvlan", base: "b0", mode: "bridge" };
    expect(plan(desired([mv]), live([owned("mv1", cur)]))).toEqual([
      "delete mv1: replaced: macvlan base b0 → b1",
      "create mv1: replaces the link of the same name (cannot change in place)",
    ]);
    expect(plan(desired([mv]), live([link("mv1", cur)]))).toEqual([]);
  });

  it("enrols in a new bridge only the listed ports that are on the host and not declared", () => {
    const decl: DesiredLink = { name: "decl1", type: "veth", state: "up", master: "br1" };
    const host = live([link("live1"), link("decl1")]);
    const [create] = diffNetwork(
      desired([bridge("br1", { ports: ["live1", "decl1", "missing1"] }), decl]),
      host,
    );
    if (create?.kind !== "create") throw new Error(`expected a create, got ${create?.kind}`);
    expect((create.after as { enrol: string[] }).enrol).toEqual(["live1"]);
  });

  it("leaves a static route alone whose link is not on the host", () => {
    const host: NetLive = {
      ...live([]),
      routes: [{ to: "198.18.9.0/24", family: 4, dev: "gone9", metric: 0, protocol: "static" }],
    };
    expect(plan(desired([], { prune: true }), host)).toEqual([]);
  });
});
