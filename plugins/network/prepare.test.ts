/**
 * prepare (normalisation and the checks the schema cannot make) and the schema itself. prepare
 * is pure given the live state, so these feed it live states as data; the same errors are
 * exercised against the real kernel in test/network.netns.system.test.ts.
 */

import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { validate_network } from "../../src/generated/validators.js";
import { containerVeths } from "../lxc/veths.js";
import { checkNetwork, guardUplinks, prepareNetwork } from "./prepare.js";
import { liveLink } from "./testing.js";
import type { NetLive } from "./types.js";

const link = liveLink;

const host: NetLive = {
  links: [
    link("lo", { type: "other", kind: "", ipv4: ["127.0.0.1/8"] }),
    link("eth0", { type: "ethernet", kind: "", ipv4: ["192.0.2.2/24"] }),
  ],
  ovs: { available: false, reason: "ovs-vswitchd is not running" },
  routes: [],
  uplinks: ["eth0"],
  defaultRoutes: [{ dev: "eth0", family: 4, metric: 100 }],
};
const withOvs: NetLive = { ...host, ovs: { available: true, bridges: [] } };

function prepare(section: unknown, live: NetLive = host, allowUplink = false) {
  return prepareNetwork(section as never, live, { allowUplink });
}

function errorOf(section: unknown, live: NetLive = host): OpError {
  try {
    prepare(section, live);
  } catch (error) {
    if (error instanceof OpError) return error;
    throw error;
  }
  throw new Error("prepare accepted the section");
}

const bridge = (name: string, ports: string[]) => ({
  name,
  type: "linux-bridge",
  bridge: { ports },
});

describe("network prepare", () => {
  it("normalises the op-dbus net example into op's fields", () => {
    const desired = prepare(
      {
        interfaces: [
          {
            name: "ovsbr0",
            type: "ovs-bridge",
            ports: ["vi100"],
            ipv4: { enabled: true, dhcp: false, address: [{ ip: "198.18.5.1", prefix: 24 }] },
          },
        ],
      },
      withOvs,
    );
    expect(desired.links).toEqual([
      { name: "ovsbr0", type: "ovs-bridge", state: "up", ipv4: ["198.18.5.1/24"] },
    ]);
    expect(desired.ovs).toEqual([
      {
        name: "ovsbr0",
        datapath: "netdev",
        ports: [{ name: "vi100", internal: false }],
        exclusivePorts: true,
        guestPorts: [],
      },
    ]);
    expect(desired.pending).toEqual([{ bridge: "ovsbr0", port: "vi100" }]);
  });

  it("maps op-dbus bridge, ovs-port, controller, gateway, properties.mtu and dhcp", () => {
    const desired = prepare(
      {
        interfaces: [
          {
            name: "br0",
            type: "bridge",
            ipv4: {
              enabled: true,
              address: [{ ip: "198.18.6.1", prefix: 24 }],
              gateway: "198.18.6.254",
            },
          },
          { name: "ovsbr1", type: "ovs-bridge" },
          { name: "mgmt0", type: "ovs-port", controller: "ovsbr1", properties: { mtu: 1400 } },
          { name: "eth0", type: "ethernet", ipv4: { enabled: true, dhcp: true } },
        ],
      },
      withOvs,
      true,
    );
    expect(desired.links.find((l) => l.name === "br0")).toMatchObject({
      type: "linux-bridge",
      ports: [],
    });
    expect(desired.ovs[0]?.ports).toEqual([{ name: "mgmt0", internal: true, mtu: 1400 }]);
    expect(desired.routes).toEqual([
      { to: "default", family: 4, via: "198.18.6.254", dev: "br0", metric: 0 },
    ]);
    expect(desired.links.find((l) => l.name === "eth0")).toEqual({
      name: "eth0",
      type: "ethernet",
      ipv4: null,
      master: null,
    });
  });

  it("rejects a port that names a missing link, but waits for a container veth", () => {
    expect(errorOf({ interfaces: [bridge("br0", ["nolink"])] }).message).toMatch(
      /^\/plugins\/network\/interfaces\/0: port "nolink" of bridge "br0" names a link that does not exist and is not declared$/,
    );
    expect(prepare({ interfaces: [bridge("br0", ["vi101"])] }).pending).toEqual([
      { bridge: "br0", port: "vi101" },
    ]);
  });

  it("waits for the host names of an lxc container's nics: custom ones, and vi{id}n{k}", () => {
    const guests = containerVeths({
      containers: [
        {
          id: 7,
          nics: [
            { type: "bridged", bridge: "br0" },
            { type: "bridged", bridge: "br0", host_name: "web-lan" },
          ],
        },
      ],
    });
    const section = { interfaces: [bridge("br0", ["vi7", "web-lan"])] };
    expect(prepareNetwork(section as never, host, { allowUplink: false, guests }).pending).toEqual([
      { bridge: "br0", port: "vi7" },
      { bridge: "br0", port: "web-lan" },
    ]);
    // Without the lxc section (another file), the default forms still wait.
    expect(prepare({ interfaces: [bridge("br0", ["vi7n1"])] }).pending).toEqual([
      { bridge: "br0", port: "vi7n1" },
    ]);
  });

  it("accepts a veth the lxc section declares as a pending port, on the bridge it names", () => {
    const section = { interfaces: [bridge("br0", ["web0"])] };
    const guests = [{ veth: "web0", bridge: "br0" }];
    expect(prepareNetwork(section as never, host, { allowUplink: false, guests }).pending).toEqual([
      { bridge: "br0", port: "web0" },
    ]);
    expect(() => prepare(section)).toThrow(
      /port "web0" of bridge "br0" names a link that does not exist/,
    );
    expect(() =>
      prepareNetwork(section as never, host, {
        allowUplink: false,
        guests: [{ veth: "web0", bridge: "br9" }],
      }),
    ).toThrow(
      /port "web0" of bridge "br0" is the veth of a container that the lxc section puts on "br9"/,
    );
  });

  it("rejects a bridge that is its own port and a loop of bridges", () => {
    expect(errorOf({ interfaces: [bridge("br0", ["br0"])] }).message).toMatch(
      /bridge "br0" lists itself as a port/,
    );
    const loop = errorOf({
      interfaces: [bridge("bra", ["brb"]), bridge("brb", ["brc"]), bridge("brc", ["bra"])],
    });
    expect(loop.message).toMatch(/bridges form a loop: bra → brb → brc → bra/);
  });

  it("rejects the same address on two links, in the file or already on another link", () => {
    const twice = {
      interfaces: [
        { name: "br0", type: "linux-bridge", ipv4: { addresses: ["198.18.7.1/24"] } },
        {
          name: "br1",
          type: "linux-bridge",
          ipv4: { addresses: [{ ip: "198.18.7.1", prefix: 30 }] },
        },
      ],
    };
    expect(errorOf(twice).message).toMatch(/address 198\.18\.7\.1 is on both "br0" and "br1"/);
    const taken = {
      interfaces: [{ name: "br0", type: "linux-bridge", ipv4: { addresses: ["192.0.2.2/24"] } }],
    };
    expect(errorOf(taken).message).toMatch(/address 192\.0\.2\.2 of "br0" is already on "eth0"/);
  });

  it("rejects invalid CIDRs and MTUs the schema lets through", () => {
    const bad = (addresses: unknown[]) => ({
      interfaces: [{ name: "br0", type: "linux-bridge", ipv4: { addresses } }],
    });
    expect(errorOf(bad(["198.18.1.300/24"])).message).toMatch(
      /invalid IPv4 CIDR "198\.18\.1\.300\/24"/,
    );
    expect(errorOf(bad(["2001:db8::1/64"])).message).toMatch(/invalid IPv4 CIDR/);
    expect(errorOf(bad(["198.18.1.1"])).message).toMatch(/invalid IPv4 CIDR "198\.18\.1\.1"/);
    const route = (to: string) => ({
      interfaces: [{ name: "br0", type: "linux-bridge" }],
      routes: [{ to, dev: "br0" }],
    });
    expect(errorOf(route("198.18.9.1/24")).message).toMatch(/bits are set after the \/24 prefix/);
    expect(errorOf(route("nowhere")).message).toMatch(/invalid CIDR "nowhere"/);
    const mtu = { interfaces: [{ name: "br0", type: "bridge", properties: { mtu: 20 } }] };
    expect(errorOf(mtu).message).toMatch(/invalid MTU 20/);
    const v6 = {
      interfaces: [
        { name: "br0", type: "linux-bridge", mtu: 1000, ipv6: { addresses: ["2001:db8::1/64"] } },
      ],
    };
    expect(errorOf(v6).message).toMatch(/below 1280/);
  });

  it("tells every problem of the file at once, each at its JSON path, also for op validate", () => {
    const section = {
      interfaces: [
        bridge("br0", ["br0"]),
        { name: "br1", type: "linux-bridge", ipv4: { address: ["198.18.1.300/24"] } },
        bridge("bra", ["brb"]),
        bridge("brb", ["bra"]),
        { name: "br1", type: "linux-bridge" },
      ],
      routes: [{ to: "nowhere", dev: "br0" }],
    };
    const lines = checkNetwork(section as never, "/plugins/net");
    expect(lines).toEqual([
      '/plugins/net/interfaces/4: "br1" is listed twice (also at interfaces/1) (list each link once)',
      '/plugins/net/interfaces/0: bridge "br0" lists itself as a port (remove it from its own ports)',
      "/plugins/net/interfaces/2: bridges form a loop: bra → brb → bra (a bridge cannot be (even indirectly) a port of itself)",
      '/plugins/net/interfaces/1/ipv4/address/0: invalid IPv4 CIDR "198.18.1.300/24" on "br1" (write it as a.b.c.d/prefix with a prefix from 0 to 32)',
      '/plugins/net/routes/0: invalid CIDR "nowhere" in a route (write it as address/prefix, or "default")',
    ]);
    const error = errorOf(section);
    expect(error.message).toBe("the network section has 5 problems");
    expect(error.details).toEqual(
      lines.map((line) => line.replace("/plugins/net/", "/plugins/network/")),
    );
    expect(checkNetwork({ interfaces: [bridge("br0", [])] } as never, "/plugins/network")).toEqual(
      [],
    );
  });

  it("rejects a macvlan whose base does not exist", () => {
    const section = { interfaces: [{ name: "mv0", type: "macvlan", macvlan: { base: "nolink" } }] };
    expect(errorOf(section).message).toMatch(/the base "nolink" of macvlan "mv0" does not exist/);
  });

  it("never creates, deletes or replaces what op does not own", () => {
    expect(errorOf({ interfaces: [{ name: "eth7", type: "ethernet" }] }).message).toMatch(
      /ethernet "eth7" does not exist/,
    );
    expect(
      errorOf({ interfaces: [{ name: "eth0", type: "ethernet", ensure: "absent" }] }).message,
    ).toMatch(/never deletes NICs/);
    const other = { ...host, links: [...host.links, link("v5")] };
    expect(errorOf({ interfaces: [{ name: "v5", type: "linux-bridge" }] }, other).message).toMatch(
      /"v5" exists as a veth \(not a linux-bridge\) and op did not create it/,
    );
  });

  it("asks to start Open vSwitch when the file has OVS links and OVSDB is unavailable", () => {
    const error = errorOf({ interfaces: [{ name: "ovsbr0", type: "ovs-bridge" }] });
    expect(error.code).toBe("daemon-unavailable");
    expect(error.message).toMatch(/ovs-vswitchd is not running/);
    expect(error.hint).toMatch(/start Open vSwitch/);
    // No OVS in the file: no OVS needed.
    expect(prepare({ interfaces: [] }).ovs).toEqual([]);
  });

  it("refuses exclusive_ports on a link that is not a bridge, and an alias too long in bytes", () => {
    const lines = checkNetwork(
      {
        interfaces: [
          { name: "v0", type: "veth", veth: { peer: "v0p" }, exclusive_ports: false },
          { name: "br0", type: "linux-bridge", alias: "\u00e9".repeat(101) },
          { name: "br1", type: "linux-bridge", alias: "e".repeat(200), exclusive_ports: true },
        ],
      } as never,
      "/plugins/network",
    );
    expect(lines).toEqual([
      '/plugins/network/interfaces/0/exclusive_ports: "v0" is a veth; only bridges have exclusive_ports (remove it, or move it to the bridge)',
      '/plugins/network/interfaces/1/alias: the alias of "br0" is 202 bytes in UTF-8; at most 200 fit (shorten it)',
    ]);
  });

  it("never rewrites a route op did not add, naming where the file gives it", () => {
    const live: NetLive = {
      ...host,
      links: [...host.links, link("br0", { type: "linux-bridge", kind: "bridge", owned: true })],
      routes: [
        {
          to: "198.18.9.0/24",
          family: 4,
          via: "198.18.1.9",
          dev: "br0",
          metric: 0,
          protocol: "boot",
        },
        { to: "default", family: 4, via: "198.18.1.1", dev: "br0", metric: 0, protocol: "dhcp" },
        {
          to: "198.18.8.0/24",
          family: 4,
          via: "198.18.1.8",
          dev: "br0",
          metric: 0,
          protocol: "static",
        },
      ],
    };
    const section = {
      interfaces: [{ name: "br0", type: "linux-bridge", ipv4: { gateway: "198.18.1.254" } }],
      routes: [
        { to: "198.18.8.0/24", via: "198.18.1.88", dev: "br0" },
        { to: "198.18.9.0/24", via: "198.18.1.99", dev: "br0" },
      ],
    };
    const error = errorOf(section, live);
    expect(error.details).toEqual([
      '/plugins/network/interfaces/0/ipv4/gateway: the route to default on "br0" exists (via 198.18.1.1, metric 0, proto dhcp) and op did not add it, so it will not rewrite it (give the route the host has, or delete the host\'s route by hand first)',
      '/plugins/network/routes/1: the route to 198.18.9.0/24 on "br0" exists (via 198.18.1.9, metric 0, proto boot) and op did not add it, so it will not rewrite it (give the route the host has, or delete the host\'s route by hand first)',
    ]);
    // The same route as the host's is no change; op's own (proto static) is rewritten.
    const same = {
      interfaces: section.interfaces.map(({ ipv4: _, ...rest }) => rest),
      routes: [{ to: "198.18.9.0/24", via: "198.18.1.9", dev: "br0" }, section.routes[0]],
    };
    expect(prepare(same, live).routes).toHaveLength(2);
  });

  it("refuses to delete, take down, re-address or enrol the uplink unless allowed", () => {
    const down = { interfaces: [{ name: "eth0", type: "ethernet", state: "down" }] };
    expect(errorOf(down).message).toMatch(/default route \(eth0\): it would take eth0 down/);
    expect(errorOf(down).hint).toMatch(/--allow-uplink/);
    const readdress = {
      interfaces: [{ name: "eth0", type: "ethernet", ipv4: { addresses: ["192.0.2.9/24"] } }],
    };
    expect(errorOf(readdress).details).toEqual([
      "remove address 192.0.2.2/24 on eth0",
      "add address 192.0.2.9/24 on eth0",
    ]);
    const enrol = { interfaces: [bridge("br0", ["eth0"])] };
    expect(errorOf(enrol).message).toMatch(/enrol eth0 in bridge br0/);
    expect(prepare(down, host, true).links[0]?.state).toBe("down");
    expect(() =>
      guardUplinks(
        [
          {
            kind: "delete",
            plugin: "network",
            resource: "link",
            id: "eth0",
            before: liveLink("eth0"),
            reason: "",
          },
        ],
        host,
      ),
    ).toThrow(/delete eth0/);
  });
});

describe("network schema", () => {
  const errorsFor = (section: unknown): string[] => {
    validate_network(section);
    return (validate_network.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`);
  };

  it("accepts the op-dbus net example as it is", () => {
    const example = {
      interfaces: [
        {
          name: "ovsbr0",
          type: "ovs-bridge",
          ports: ["vi100"],
          ipv4: { enabled: true, dhcp: false, address: [{ ip: "198.18.5.1", prefix: 24 }] },
        },
      ],
    };
    expect(errorsFor(example)).toEqual([]);
  });

  it("rejects names over 15 characters, with a slash or whitespace", () => {
    for (const name of ["a-very-long-name0", "br/0", "br 0", "br\t0", "..", ""]) {
      expect(errorsFor({ interfaces: [{ name, type: "dummy" }] })).toContain(
        "/interfaces/0/name pattern",
      );
    }
    expect(
      errorsFor({
        interfaces: [{ name: "br0", type: "linux-bridge", bridge: { ports: ["x/y"] } }],
      }),
    ).toContain("/interfaces/0/bridge/ports/0 pattern");
    expect(errorsFor({ interfaces: [{ name: "fifteen-chars-0", type: "dummy" }] })).toEqual([]);
  });

  it("rejects names ip -batch or the kernel would misread: #, quotes, backslash, %, control characters", () => {
    // "#" starts an ip comment even inside quotes; "%d" makes the kernel choose the name.
    for (const name of ["a#b", 'a"b', "a'b", "a\\b", "br%d", "a\u0001b", "caf\u00e9"]) {
      expect(errorsFor({ interfaces: [{ name, type: "dummy" }] })).toContain(
        "/interfaces/0/name pattern",
      );
      expect(
        errorsFor({ interfaces: [{ name: "v0", type: "veth", veth: { peer: name } }] }),
      ).toContain("/interfaces/0/veth/peer pattern");
    }
    for (const name of ["help", "up", "-x", "a.b_c-d", "x[1]", "a$b"]) {
      expect(errorsFor({ interfaces: [{ name, type: "dummy" }] })).toEqual([]);
    }
  });

  it("rejects an alias with #, a double quote or a control character, and a numeric netns", () => {
    for (const alias of ["lab #1", 'the "lab"', "two\nlines", "tab\there"]) {
      expect(errorsFor({ interfaces: [{ name: "br0", type: "dummy", alias }] })).toContain(
        "/interfaces/0/alias pattern",
      );
    }
    expect(errorsFor({ interfaces: [{ name: "br0", type: "dummy", alias: "it's ok" }] })).toEqual(
      [],
    );
    for (const netns of ["1", "..", "."]) {
      expect(
        errorsFor({ interfaces: [{ name: "v0", type: "veth", veth: { peer: "p", netns } }] }),
      ).toContain("/interfaces/0/veth/netns pattern");
    }
  });

  it("rejects an MTU out of range and a prefix too long", () => {
    expect(errorsFor({ interfaces: [{ name: "br0", type: "dummy", mtu: 67 }] })).toContain(
      "/interfaces/0/mtu minimum",
    );
    expect(errorsFor({ interfaces: [{ name: "br0", type: "dummy", mtu: 70000 }] })).toContain(
      "/interfaces/0/mtu maximum",
    );
    const long = {
      interfaces: [
        { name: "br0", type: "dummy", ipv4: { addresses: [{ ip: "198.18.0.1", prefix: 33 }] } },
      ],
    };
    expect(errorsFor(long)).toContain("/interfaces/0/ipv4/addresses/0/prefix maximum");
  });
});
