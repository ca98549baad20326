/**
 * The uplink guard, branch by branch: each case is one action and the exact problems the
 * guard must find in it (none for the near misses), so that disabling a branch or flipping one
 * of its conditions fails a case. The host here has its IPv4 default route on br0 (metric
 * 100), whose port is eth0, and an IPv6 default route on ovsbr0 (metric 1024), whose OVS port
 * is eth1 (NetLive.uplinks holds all four, as query's linksUnder finds them).
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import type { FieldChange } from "../../src/plugin.js";
import { ovsChange } from "./ovs-changes.js";
import { guardUplinks, prepareNetwork, uplinkGuardProblems } from "./prepare.js";
import { linksUnder } from "./query.js";
import { ovsDatabaseRef, routeId } from "./refs.js";
import { liveLink } from "./testing.js";
import type {
  DesiredLink,
  DesiredRoute,
  LinkCreate,
  LiveOvsPort,
  NetLive,
  NetworkAction,
  OvsChange,
} from "./types.js";

const host: Pick<NetLive, "uplinks" | "defaultRoutes"> = {
  uplinks: ["br0", "eth0", "eth1", "ovsbr0"],
  defaultRoutes: [
    { dev: "br0", family: 4, metric: 100 },
    { dev: "ovsbr0", family: 6, metric: 1024 },
  ],
};

function problemsOf(action: NetworkAction): string[] {
  try {
    guardUplinks([action], host);
    return [];
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    expect(error.hint).toMatch(/--allow-uplink/);
    // A refused plan is the file's problem (exit 1), not a bug in op.
    expect(error.code).toBe("invalid-state");
    return [...error.details];
  }
}

const plugin = "network";
const modify = (
  id: string,
  changes: FieldChange[],
  after: DesiredLink = { name: id, type: "linux-bridge" },
): NetworkAction => ({
  kind: "modify",
  plugin,
  resource: "link",
  id,
  before: liveLink(id),
  after,
  changes,
  reason: "",
});
const deleteLink = (id: string): NetworkAction => ({
  kind: "delete",
  plugin,
  resource: "link",
  id,
  before: liveLink(id),
  reason: "",
});
const ovs = (changes: OvsChange[]): NetworkAction => ({
  kind: "modify",
  ...ovsDatabaseRef,
  resource: "ovs-db",
  before: [],
  after: [],
  changes,
  reason: "",
});
const ovsPort = (name: string): LiveOvsPort => ({ name, type: "", owned: false });
const createLink = (id: string, enrol: string[]): NetworkAction => ({
  kind: "create",
  plugin,
  resource: "link",
  id,
  after: { link: { name: id, type: "linux-bridge" }, enrol } satisfies LinkCreate,
  reason: "",
});
const route = (
  kind: "create" | "modify" | "delete",
  fields: Partial<DesiredRoute>,
): NetworkAction => {
  const value: DesiredRoute = { to: "default", family: 4, dev: "opbr0", metric: 0, ...fields };
  const id = routeId(value);
  const base = { plugin, resource: "route", id, reason: "" } as const;
  if (kind === "create") return { ...base, kind, after: value };
  const live = { ...value, metric: 5, protocol: "static" };
  if (kind === "delete") return { ...base, kind, before: live };
  return {
    ...base,
    kind,
    before: live,
    after: value,
    changes: [{ path: "metric", before: 5, after: value.metric }],
  };
};

describe("uplink guard", () => {
  const cases: [string, NetworkAction, string[]][] = [
    // Open vSwitch: removing, moving or enrolling an uplink port, deleting an uplink bridge.
    [
      "OVS: removing the uplink port",
      ovs([ovsChange.removePort("ovsbr0", ovsPort("eth1"))]),
      ["delete eth1 from Open vSwitch"],
    ],
    ["OVS: removing another port", ovs([ovsChange.removePort("ovsbr0", ovsPort("p9"))]), []],
    [
      "OVS: deleting the bridge that carries the route",
      ovs([ovsChange.removeBridge("ovsbr0", { datapath: "netdev", ports: [] })]),
      ["delete ovsbr0 from Open vSwitch"],
    ],
    [
      "OVS: deleting a bridge that holds the uplink port",
      ovs([ovsChange.removeBridge("other", { datapath: "netdev", ports: ["p1", "eth1"] })]),
      ["delete eth1 from Open vSwitch (with bridge other)"],
    ],
    [
      "OVS: deleting a bridge without uplinks",
      ovs([ovsChange.removeBridge("other", { datapath: "netdev", ports: ["p1"] })]),
      [],
    ],
    [
      "OVS: moving the uplink port to another bridge",
      ovs([ovsChange.addPort("opovs", "eth1", { internal: false, from: "ovsbr0" })]),
      ["move eth1 from OVS bridge ovsbr0 to opovs"],
    ],
    [
      "OVS: enrolling the uplink in a bridge",
      ovs([ovsChange.addPort("opovs", "eth0", { internal: false })]),
      ["enrol eth0 in OVS bridge opovs"],
    ],
    [
      "OVS: a field of the uplink port (its tag)",
      ovs([ovsChange.setPort("ovsbr0", "eth1", "tag", 10, undefined)]),
      [],
    ],
    // Default routes.
    [
      "route: a default route with the host's metric",
      route("create", { metric: 100 }),
      [
        "add a default route on opbr0 with metric 100, which would replace or shadow the host's default route on br0 (metric 100)",
      ],
    ],
    [
      "route: a default route with a lower metric",
      route("create", { metric: 0 }),
      [
        "add a default route on opbr0 with metric 0, which would replace or shadow the host's default route on br0 (metric 100)",
      ],
    ],
    ["route: a default route with a higher metric", route("create", { metric: 101 }), []],
    [
      "route: an IPv6 default route under the IPv4 one's metric only",
      route("create", { family: 6, metric: 1025 }),
      [],
    ],
    [
      "route: an IPv6 default route at the IPv6 one's metric",
      route("create", { family: 6, metric: 1024 }),
      [
        "add a default route on opbr0 with metric 1024, which would replace or shadow the host's default route on ovsbr0 (metric 1024)",
      ],
    ],
    ["route: a route that is not a default", route("create", { to: "198.18.0.0/24" }), []],
    [
      "route: changing a default route",
      route("modify", { metric: 7 }),
      ["replace the default route on opbr0"],
    ],
    ["route: deleting a default route", route("delete", {}), ["delete the default route on opbr0"]],
    ["route: deleting another route", route("delete", { to: "198.18.0.0/24" }), []],
    // Enrolling the uplink in a bridge, new or existing, and taking one out of its bridge.
    [
      "a new bridge enrolling the uplink",
      createLink("opbr1", ["eth9", "eth0"]),
      ["enrol eth0 in bridge opbr1"],
    ],
    ["a new bridge enrolling other links", createLink("opbr1", ["eth9"]), []],
    [
      "an existing bridge enrolling the uplink",
      modify("opbr1", [{ path: "ports", after: "eth0" }]),
      ["enrol eth0 in bridge opbr1"],
    ],
    [
      "an existing bridge enrolling another link",
      modify("opbr1", [{ path: "ports", after: "x" }]),
      [],
    ],
    [
      "a bridge letting the uplink go",
      modify("br0", [{ path: "ports", before: "eth0" }]),
      ["take eth0 out of bridge br0"],
    ],
    ["a bridge letting another port go", modify("br0", [{ path: "ports", before: "x" }]), []],
    // The uplink's own fields.
    [
      "changing the uplink's master",
      modify("eth0", [{ path: "master", before: "br0", after: "opbr1" }]),
      ["enrol eth0 in bridge opbr1"],
    ],
    [
      "taking the uplink out of its bridge",
      modify("eth0", [{ path: "master", before: "br0", after: null }]),
      ["take eth0 out of bridge br0"],
    ],
    ["changing another link's master", modify("x", [{ path: "master", after: "br0" }]), []],
    [
      "taking the uplink down",
      modify("br0", [{ path: "state", before: "up", after: "down" }]),
      ["take br0 down"],
    ],
    ["bringing the uplink up", modify("br0", [{ path: "state", before: "down", after: "up" }]), []],
    ["taking another link down", modify("x", [{ path: "state", after: "down" }]), []],
    [
      "re-addressing the uplink",
      modify("br0", [
        { path: "ipv4", before: "192.0.2.2/24" },
        { path: "ipv6", after: "2001:db8::2/64" },
      ]),
      ["remove address 192.0.2.2/24 on br0", "add address 2001:db8::2/64 on br0"],
    ],
    ["re-addressing another link", modify("x", [{ path: "ipv4", after: "198.18.0.1/24" }]), []],
    ["the uplink's MTU", modify("br0", [{ path: "mtu", before: 1500, after: 1400 }]), []],
    [
      "taking down the peer of a veth when the peer is the uplink",
      modify("v0", [{ path: "peer.state", before: "up", after: "down" }], {
        name: "v0",
        type: "veth",
        veth: { peer: "eth0" },
      }),
      ["take eth0 down"],
    ],
    [
      "taking down the peer of a veth when the peer is another link",
      modify("v0", [{ path: "peer.state", before: "up", after: "down" }], {
        name: "v0",
        type: "veth",
        veth: { peer: "v0p" },
      }),
      [],
    ],
    [
      "bringing up the peer of a veth when the peer is the uplink",
      modify("v0", [{ path: "peer.state", before: "down", after: "up" }], {
        name: "v0",
        type: "veth",
        veth: { peer: "eth0" },
      }),
      [],
    ],
    ["deleting the uplink", deleteLink("eth0"), ["delete eth0"]],
    [
      "an alias that reads down on the uplink is not its state",
      modify("eth0", [{ path: "alias", before: "up", after: "down" }]),
      [],
    ],
    [
      "an alias that reads down on a veth whose peer is the uplink is not the peer's state",
      modify("v0", [{ path: "alias", before: "up", after: "down" }], {
        name: "v0",
        type: "veth",
        veth: { peer: "eth0" },
      }),
      [],
    ],
    ["deleting another link", deleteLink("x"), []],
  ];
  for (const [name, action, problems] of cases) {
    it(name, () => {
      expect(problemsOf(action)).toEqual(problems);
    });
  }

  it("reads a bridge field's change as a field, even when an uplink is named like it", () => {
    const named = { ...host, uplinks: [...host.uplinks, "mtu"] };
    const change = ovs([ovsChange.setBridge("ovsbr0", "mtu", 1500, 1400)]);
    expect(() => guardUplinks([change], named)).not.toThrow();
  });

  it("names the uplinks and every problem of the plan at once", () => {
    const plan = [modify("br0", [{ path: "state", after: "down" }]), deleteLink("eth0")];
    expect(() => guardUplinks(plan, host)).toThrow(
      "refusing a plan that touches the link carrying the host's default route (br0, eth0, eth1, ovsbr0): it would take br0 down; delete eth0",
    );
  });

  it("names the uplinks in each problem the engine's guard hook reports", () => {
    const plan = [modify("br0", [{ path: "state", after: "down" }]), deleteLink("eth0")];
    expect(uplinkGuardProblems(plan, host)).toEqual(
      ["take br0 down", "delete eth0"].map((what, index) => ({
        path: index === 0 ? "network link br0" : "network link eth0",
        message: `it touches the link carrying the host's default route (br0, eth0, eth1, ovsbr0): it would ${what}`,
        hint: expect.stringMatching(/--allow-uplink/),
      })),
    );
  });
});

describe("the links under an uplink (query)", () => {
  const link = liveLink;
  const links = [
    link("br0", { type: "linux-bridge" }),
    link("bond0", { master: "br0" }),
    link("eth0", { master: "bond0" }),
    link("mv0", { type: "macvlan", base: "eth5" }),
    link("eth5"),
    link("other", { master: "br9" }),
    link("mgmt0", { type: "ovs-interface" }),
  ];
  const ovsLive: NetLive["ovs"] = {
    available: true,
    bridges: [
      {
        name: "ovsbr0",
        datapath: "system",
        owned: false,
        ports: [
          { name: "mgmt0", type: "internal", owned: false },
          { name: "eth1", type: "", owned: false },
        ],
      },
      {
        name: "ovsbr9",
        datapath: "system",
        owned: false,
        ports: [{ name: "eth9", type: "", owned: false }],
      },
    ],
  };

  it("follows bridge ports down, and a macvlan to its base", () => {
    expect(linksUnder(["br0", "mv0"], links, ovsLive)).toEqual([
      "bond0",
      "br0",
      "eth0",
      "eth5",
      "mv0",
    ]);
  });

  it("follows an OVS internal port to its bridge and the bridge's ports", () => {
    expect(linksUnder(["mgmt0"], links, ovsLive)).toEqual(["eth1", "mgmt0", "ovsbr0"]);
    expect(linksUnder(["mgmt0"], links, { available: false, reason: "" })).toEqual(["mgmt0"]);
  });
});

describe("the guard in prepare", () => {
  const live: NetLive = {
    links: [],
    ovs: { available: false, reason: "not running" },
    routes: [],
    uplinks: ["eth0"],
    defaultRoutes: [{ dev: "eth0", family: 4, metric: 0 }],
  };
  const section = {
    interfaces: [{ name: "opbr0", type: "linux-bridge" }],
    routes: [{ to: "default", via: "198.18.0.1", dev: "opbr0" }],
  };

  it("refuses a default route that would replace the host's, unless --allow-uplink", () => {
    expect(() => prepareNetwork(section as never, live, { allowUplink: false })).toThrow(
      /add a default route on opbr0 with metric 0, which would replace or shadow the host's default route on eth0 \(metric 0\)/,
    );
    expect(prepareNetwork(section as never, live, { allowUplink: true }).routes).toHaveLength(1);
  });
});
