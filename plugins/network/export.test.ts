/**
 * `op export` of the network section, on every live host of the plan fixtures: the section
 * validates against the schema, and planning it against the same host plans nothing. Owned
 * only, it holds no link op did not create (but the peers of its veths); with all, no `lo`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NetworkSection } from "../../src/generated/network.js";
import { validate_network } from "../../src/generated/validators.js";
import { diffNetwork } from "./diff.js";
import { exportNetwork } from "./export.js";
import { prepareNetwork } from "./prepare.js";
import type { NetLive } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const hosts = readdirSync(root)
  .sort()
  .map((name) => ({
    name,
    live: JSON.parse(readFileSync(join(root, name, "live.json"), "utf8")) as NetLive,
  }));

function planOf(section: NetworkSection, live: NetLive) {
  return diffNetwork(prepareNetwork(section, live, { allowUplink: false, guests: [] }), live);
}

describe("network export round trip", () => {
  for (const { name, live } of hosts) {
    for (const all of [false, true]) {
      it(`${name}${all ? " --all" : ""}`, () => {
        const { section } = exportNetwork(live, { all });
        const exported = (section ?? {}) as NetworkSection;
        expect(validate_network(exported), JSON.stringify(validate_network.errors)).toBe(true);
        expect(planOf(exported, live)).toEqual([]);
        const names = (exported.interfaces ?? []).map((iface) => iface.name);
        expect(names).not.toContain("lo");
        if (!all) {
          const owned = new Set(live.links.filter((l) => l.owned).map((l) => l.name));
          const peers = new Set(live.links.filter((l) => owned.has(l.name)).map((l) => l.peer));
          for (const n of names)
            expect(owned.has(n) || peers.has(n) || isOvsOwned(live, n)).toBe(true);
        }
      });
    }
  }
});

function isOvsOwned(live: NetLive, name: string): boolean {
  if (!live.ovs.available) return false;
  return live.ovs.bridges.some(
    (b) => b.owned && (b.name === name || b.ports.some((p) => p.name === name)),
  );
}

describe("network export beside the lxc section", () => {
  const link = (name: string, fields: Partial<NetLive["links"][number]>) => ({
    name,
    type: "veth" as const,
    kind: "veth",
    state: "up" as const,
    mtu: 1500,
    mac: "02:00:00:00:00:01",
    owned: false,
    ipv4: [],
    ipv6: [],
    ...fields,
  });
  const live: NetLive = {
    links: [
      link("opexinc0", { type: "linux-bridge", kind: "bridge", ipv4: ["198.18.62.1/24"] }),
      link("vethab12cd", { master: "opexinc0", peerElsewhere: true }),
      link("opexbr1", { type: "linux-bridge", kind: "bridge" }),
      link("veth9f8e7d", { master: "opexbr1", peerElsewhere: true }),
    ],
    ovs: { available: false, reason: "not here" },
    routes: [],
    uplinks: [],
    defaultRoutes: [],
  };

  it("leaves an Incus network's bridge to the lxc section, and container veths out", () => {
    const sections = new Map([["lxc", { networks: [{ name: "opexinc0" }] }]]);
    const { section, notes } = exportNetwork(live, { all: true }, undefined, { sections });
    expect(section).toEqual({
      interfaces: [
        { name: "opexbr1", type: "linux-bridge", state: "up", mtu: 1500, bridge: { ports: [] } },
      ],
    });
    expect(validate_network(section)).toBe(true);
    expect(notes).toEqual([
      "veth veth9f8e7d: not op's, its peer is in another namespace (a container's?); left out",
      "Open vSwitch: not here; OVS bridges and ports, if any, are left out",
    ]);
    expect(planOf(section as NetworkSection, live)).toEqual([]);
  });
});
