/**
 * `ignore` lists through the real registry: the refusal of a glob that matches what the same
 * section declares (both paths named), and the engine hiding ignored objects from a plan, so
 * that not even `prune` sees them.
 */
import { describe, expect, it } from "vitest";
import { planState } from "../src/engine/reconcile.js";
import { inspectState } from "../src/state/check.js";
import { ignoredBy } from "../src/state/ignore.js";
import { quietCtx } from "../test/support/engine.js";
import { lxcIgnore } from "./lxc/ignore.js";
import type { LiveContainer, LxcLive } from "./lxc/types.js";
import { networkIgnore } from "./network/ignore.js";
import { liveLink } from "./network/testing.js";
import type { NetLive } from "./network/types.js";
import { nftablesIgnore } from "./nftables/ignore.js";
import type { NftLive, NftTable } from "./nftables/types.js";
import { registry } from "./registry.js";

const problemsOf = async (plugins: Record<string, unknown>) =>
  (await inspectState({ version: 1, plugins }, registry)).problems;

describe("a glob that matches what the same section declares", () => {
  it("is refused for a link, naming the glob's path and the link's", async () => {
    const problems = await problemsOf({
      network: {
        ignore: ["docker0", "opigx*"],
        interfaces: [{ name: "opigx1", type: "dummy" }],
      },
    });
    expect(problems).toEqual([
      expect.objectContaining({
        path: "/plugins/network/ignore/1",
        message: expect.stringContaining(
          '"opigx*" matches the link "opigx1" that /plugins/network/interfaces/0/name declares',
        ),
      }),
    ]);
  });

  it("is refused for an op-dbus bridge port and a route's link", async () => {
    const problems = await problemsOf({
      network: {
        ignore: ["opigr*"],
        interfaces: [{ name: "opigbr", type: "bridge", ports: ["opigr1"] }],
        routes: [{ to: "198.19.0.0/16", via: "198.18.0.1", dev: "opigr2" }],
      },
    });
    expect(problems.map((p) => p.message.match(/\/plugins\S+ declares/)?.[0])).toEqual([
      "/plugins/network/interfaces/0/ports/0 declares",
      "/plugins/network/routes/0/dev declares",
    ]);
  });

  it("is refused for a veth peer and a bridge port too, under the alias's path", async () => {
    const problems = await problemsOf({
      net: {
        ignore: ["opigp?"],
        interfaces: [
          { name: "opigv", type: "veth", veth: { peer: "opigp1" } },
          { name: "opigbr", type: "linux-bridge", bridge: { ports: ["opigp2"] } },
        ],
      },
    });
    expect(problems.map((p) => [p.path, p.message.match(/\/plugins\S+ declares/)?.[0]])).toEqual([
      ["/plugins/net/ignore/0", "/plugins/net/interfaces/0/veth/peer declares"],
      ["/plugins/net/ignore/0", "/plugins/net/interfaces/1/bridge/ports/0 declares"],
    ]);
  });

  it("is refused for a container, by the name op gives it and by project/name", async () => {
    const problems = await problemsOf({
      lxc: {
        ignore: ["ct7*", "opigp/opig-b"],
        containers: [{ id: 701 }, { id: "opigb", name: "opig-b", project: "opigp" }],
      },
    });
    expect(problems.map((p) => [p.path, p.message.match(/\/plugins\S+ declares/)?.[0]])).toEqual([
      ["/plugins/lxc/ignore/0", "/plugins/lxc/containers/0/id declares"],
      ["/plugins/lxc/ignore/1", "/plugins/lxc/containers/1/name declares"],
    ]);
  });

  it("is refused for a table, by name and by family/name", async () => {
    const table = { family: "inet", name: "opig_t", chains: [] };
    for (const glob of ["opig_*", "inet/opig_t", "*/opig_?"]) {
      const problems = await problemsOf({ nftables: { ignore: [glob], tables: [table] } });
      expect(problems, glob).toEqual([
        expect.objectContaining({
          path: "/plugins/nftables/ignore/0",
          message: expect.stringContaining("/plugins/nftables/tables/0/name declares"),
        }),
      ]);
    }
    expect(
      await problemsOf({ nftables: { ignore: ["ip/opig_t", "opig_x*"], tables: [table] } }),
    ).toEqual([]);
  });

  it("refuses a glob op cannot read, with its path, and takes shell characters as they are", async () => {
    const problems = await problemsOf({
      network: { ignore: ["veth[0-9", "$(reboot);`id`", "a\\"], interfaces: [] },
    });
    expect(problems.map((p) => p.path)).toEqual([
      "/plugins/network/ignore/0",
      "/plugins/network/ignore/2",
    ]);
    expect(problems[0]?.message).toContain("never closed");
  });

  it("refuses, by schema, an empty glob, one too long, and ignore where a plugin has none", async () => {
    const problems = await problemsOf({
      network: { ignore: ["", "x".repeat(257)] },
      sysctl: { ignore: ["net.*"] },
    });
    expect(problems.map((p) => p.path).sort()).toEqual([
      "/plugins/network/ignore/0",
      "/plugins/network/ignore/1",
      "/plugins/sysctl",
    ]);
  });
});

describe("which name a glob is matched against", () => {
  it("a glob with a / against the qualified name, one without against the name", () => {
    const ignored = ignoredBy({ ignore: ["[!o]*", "opig/*"] });
    if (ignored === undefined) throw new Error("no test");
    expect(ignored("opig-a", "default/opig-a")).toBe(false);
    expect(ignored("x", "opig/x")).toBe(true);
    expect(ignored("default", undefined)).toBe(true);
    expect(ignored("opig", undefined)).toBe(false);
    expect(ignoredBy({ ignore: [] })).toBeUndefined();
    expect(ignoredBy({})).toBeUndefined();
  });

  it("refuses a profile, network or project the section declares", async () => {
    const problems = await problemsOf({
      lxc: {
        ignore: ["opigp*", "opigq/*"],
        profiles: [{ name: "opigp1" }],
        networks: [{ name: "opign", project: "opigq" }],
        projects: [{ name: "opigp2" }],
      },
    });
    expect(problems.map((p) => [p.path, p.message.match(/the \w+ \S+ that \S+/)?.[0]])).toEqual([
      ["/plugins/lxc/ignore/0", 'the profile "opigp1" that /plugins/lxc/profiles/0/name'],
      ["/plugins/lxc/ignore/1", 'the network "opigq/opign" that /plugins/lxc/networks/0/name'],
      ["/plugins/lxc/ignore/0", 'the project "opigp2" that /plugins/lxc/projects/0/name'],
    ]);
  });
});

describe("what a section ignores is hidden from the plan", () => {
  const live: NetLive = {
    links: [
      liveLink("opigx1", { type: "dummy", kind: "dummy", owned: true }),
      liveLink("opigkeep", { type: "dummy", kind: "dummy", owned: true }),
    ],
    ovs: { available: false, reason: "not in this test" },
    routes: [{ to: "198.18.9.0/24", family: 4, dev: "opigx1", metric: 0, protocol: "static" }],
    uplinks: [],
    defaultRoutes: [],
  };
  const plan = async (section: Record<string, unknown>) => {
    const document = {
      version: 1,
      sections: new Map([["network", section]]),
      paths: new Map([["network", "/plugins/network"]]),
    };
    const [network] = await registry.load(["network"]);
    if (network === undefined) throw new Error("no network plugin");
    const started = new Map([["network", Promise.resolve(live)]]);
    return planState(document, [network], quietCtx(), started);
  };

  it("so prune deletes an owned link only when no glob matches it", async () => {
    const pruned = await plan({ prune: true, interfaces: [] });
    expect(pruned.actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "delete opigkeep",
      "delete opigx1",
    ]);
    const ignoring = await plan({ prune: true, ignore: ["opigx*"], interfaces: [] });
    expect(ignoring.actions.map((a) => `${a.kind} ${a.id}`)).toEqual(["delete opigkeep"]);
    const seen = ignoring.prepared[0]?.live as NetLive;
    expect(seen.links.map((l) => l.name)).toEqual(["opigkeep"]);
    expect(seen.routes).toEqual([]);
  });

  it("removes ignored OVS bridges and ports, and keeps uplinks for the guard", () => {
    const withOvs: NetLive = {
      ...live,
      uplinks: ["opigx1"],
      ovs: {
        available: true,
        bridges: [
          { name: "opigovs", datapath: "netdev", owned: true, ports: [] },
          {
            name: "opigkeepovs",
            datapath: "netdev",
            owned: true,
            ports: [
              { name: "opigxport", type: "", owned: true },
              { name: "opigother", type: "", owned: true },
            ],
          },
        ],
      },
    };
    const seen = networkIgnore.without(
      withOvs,
      (name) => name.startsWith("opigx") || name === "opigovs",
    );
    expect(seen.uplinks).toEqual(["opigx1"]);
    expect(seen.ovs.available && seen.ovs.bridges).toEqual([
      expect.objectContaining({
        name: "opigkeepovs",
        ports: [expect.objectContaining({ name: "opigother" })],
      }),
    ]);
  });

  it("removes ignored containers by name or project/name, and ignored tables", () => {
    const container = (name: string, project: string) =>
      ({ name, project, managed: true }) as LiveContainer;
    const lxc = {
      containers: [
        container("opig-a", "default"),
        container("opig-b", "opigp"),
        container("x", "default"),
      ],
      bridges: {},
      aliases: {},
    } as LxcLive;
    const seen = lxcIgnore.without(
      lxc,
      (name, qualified) => name === "opig-a" || qualified === "opigp/opig-b",
    );
    expect(seen.containers.map((c) => c.name)).toEqual(["x"]);
    const table = (family: string, name: string) => ({ family, name }) as NftTable;
    const nft: NftLive = {
      version: "1.0.6",
      tables: [table("inet", "opig_a"), table("ip", "opig_a")],
    };
    const tables = nftablesIgnore.without(
      nft,
      (_name, qualified) => qualified === "ip/opig_a",
    ).tables;
    expect(tables.map((t) => `${t.family}/${t.name}`)).toEqual(["inet/opig_a"]);
  });
});
