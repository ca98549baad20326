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
