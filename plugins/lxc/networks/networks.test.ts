/**
 * Managed networks from the file alone and against a live state given as data: typed fields
 * and raw keys that must agree, overlapping subnets, a name a network-plugin link has, a
 * container on both a bridge and a network, deletes refused while a container that stays uses
 * the network, and the diff's actions and needs. The host's files are a fixture tree (sys).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { adoptionProblems } from "../../../src/engine/reconcile.js";
import { OpError } from "../../../src/errors.js";
import { createSys } from "../../../src/host/sys.js";
import type { IncusClient } from "../../../src/incus.js";
import { diffLxc } from "../diff.js";
import { lxcQueryJson, reportLxc } from "../index.js";
import { userOf } from "../objects.js";
import { collect, leavingOf, ownedFields } from "../objects.testing.js";
import type { LxcSection } from "../types.js";
import { applyNetwork } from "./apply.js";
import { checkNetworks, subnetsOverlap } from "./check.js";
import { diffNetworks } from "./diff.js";
import { attachNetwork, checkContainerNetwork, resolveNetworks } from "./prepare.js";
import { liveNetwork } from "./query.js";
import type { LiveNetwork } from "./types.js";

const root = mkdtempSync(join(tmpdir(), "op-lxc-networks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "proc/net"), { recursive: true });
// The host has 198.18.77.5 on some link (fib_trie's form), and 127.0.0.1.
writeFileSync(
  join(root, "proc/net/fib_trie"),
  [
    "Main:",
    "  +-- 0.0.0.0/0 3 0 5",
    "     |-- 198.18.77.5",
    "        /32 host LOCAL",
    "     |-- 127.0.0.1",
    "        /32 host LOCAL",
    "",
  ].join("\n"),
);
const sys = createSys(root);

function live(name: string, fields: Partial<LiveNetwork> = {}): LiveNetwork {
  return {
    name,
    type: "bridge",
    ...ownedFields(),
    ...fields,
  };
}

describe("checkNetworks", () => {
  it("builds each network's config from its typed fields and raw keys, tagged as op's", () => {
    const problems = collect();
    const [net] = checkNetworks(
      {
        networks: [
          {
            name: "optn0",
            ipv4_address: "198.18.210.1/24",
            ipv4_nat: false,
            ipv4_dhcp: true,
            ipv6_address: "none",
            dns_domain: "lab.internal",
            config: { "ipv4.dhcp.ranges": "198.18.210.100-198.18.210.150", "ipv4.nat": false },
          },
        ],
      },
      "/plugins/lxc",
      problems,
    );
    expect(problems.lines).toEqual([]);
    expect(net?.config).toEqual({
      "ipv4.address": "198.18.210.1/24",
      "ipv4.nat": "false",
      "ipv4.dhcp": "true",
      "ipv4.dhcp.ranges": "198.18.210.100-198.18.210.150",
      "ipv6.address": "none",
      "dns.domain": "lab.internal",
      "user.op.managed": "true",
    });
  });

  it("refuses a key given twice with different values, a name twice, op's tag, and overlaps", () => {
    const problems = collect();
    const section: LxcSection = {
      networks: [
        {
          name: "optn0",
          ipv4_address: "198.18.210.1/24",
          config: { "ipv4.address": "10.0.0.1/8" },
        },
        { name: "optn1", config: { "ipv4.address": "198.18.0.1/16", "user.op.managed": "false" } },
        { name: "optn0" },
        { name: "optn2", ipv4_address: "198.18.211.1/24", ensure: "absent" },
      ],
    };
    checkNetworks(section, "/plugins/lxc", problems);
    expect(problems.lines).toEqual([
      '/plugins/lxc/networks/0/ipv4_address: ipv4.address is given twice with different values: /plugins/lxc/networks/0/ipv4_address = "198.18.210.1/24", /plugins/lxc/networks/0/config/ipv4.address = "10.0.0.1/8"',
      "/plugins/lxc/networks/1/config/user.op.managed: user.op.managed is op's own ownership tag; op sets it on what it creates, the file cannot",
      '/plugins/lxc/networks/2/name: network "optn0" is also declared by /plugins/lxc/networks/0',
      "/plugins/lxc/networks/1/config/ipv4.address: 198.18.0.1/16 overlaps 198.18.210.1/24 of network optn0 (/plugins/lxc/networks/0); each network needs a subnet of its own",
    ]);
  });

  it("tells overlapping subnets from neighbours, in both families", () => {
    expect(subnetsOverlap("198.18.210.1/24", "198.18.210.200/24")).toBe(true);
    expect(subnetsOverlap("198.18.0.1/16", "198.18.210.1/24")).toBe(true);
    expect(subnetsOverlap("198.18.210.1/24", "198.18.211.1/24")).toBe(false);
    expect(subnetsOverlap("fd42:1::1/64", "fd42:1::99/64")).toBe(true);
    expect(subnetsOverlap("fd42:1::1/64", "fd42:2::1/64")).toBe(false);
    expect(subnetsOverlap("none", "198.18.210.1/24")).toBe(false);
    expect(subnetsOverlap("fd42:1::1/64", "198.18.210.1/24")).toBe(false);
  });
});

describe("resolveNetworks", () => {
  const resolve = (section: LxcSection, networks: LiveNetwork[], leaving = leavingOf()) => {
    const problems = collect();
    const declared = checkNetworks(section, "/plugins/lxc", problems);
    resolveNetworks(declared, networks, {
      problems,
      declaredLinks: [{ name: "optbr0", path: "/plugins/network/interfaces/3/name" }],
      sys: () => sys,
      leaving,
    });
    return problems.lines;
  };

  it("refuses a name the network plugin declares, naming both JSON paths", () => {
    expect(resolve({ networks: [{ name: "optbr0" }] }, [])).toEqual([
      '/plugins/lxc/networks/0/name: "optbr0" is also a link that plugins.network declares at /plugins/network/interfaces/3/name; an Incus managed network makes a bridge of that name, so the two would fight over it: rename one',
    ]);
  });

  it("refuses a subnet over a live network's or an address of the host, not its own", () => {
    const other = live("opincbr0", {
      managed: false,
      config: { "ipv4.address": "198.18.76.1/24" },
    });
    const self = live("optn0", { config: { "ipv4.address": "198.18.76.1/23" } });
    expect(
      resolve({ networks: [{ name: "optn0", ipv4_address: "198.18.76.1/23" }] }, [other, self]),
    ).toEqual([
      "/plugins/lxc/networks/0/ipv4_address: 198.18.76.1/23 overlaps 198.18.76.1/24 of Incus network opincbr0 on this host; each network needs a subnet of its own",
      "/plugins/lxc/networks/0/ipv4_address: 198.18.76.1/23 overlaps 198.18.77.5, an address of this host on another link; pick a subnet the host does not use",
    ]);
    // The bridge's own address is the network's, not another link's.
    const own = live("optn0", { config: { "ipv4.address": "198.18.77.5/24" } });
    expect(
      resolve({ networks: [{ name: "optn0", ipv4_address: "198.18.77.5/24" }] }, [own]),
    ).toEqual([]);
  });

  it("changes or deletes a network op did not create only by adoption, never tagging it", () => {
    const foreign = live("optn0", { managed: false, config: { "ipv4.dhcp": "true" } });
    // Nothing at plan time: the adoption is the engine's to refuse (adoptionProblems).
    expect(resolve({ networks: [{ name: "optn0" }] }, [foreign])).toEqual([]);
    expect(resolve({ networks: [{ name: "optn0", ensure: "absent" }] }, [foreign])).toEqual([]);
    const actionsOf = (section: LxcSection) =>
      diffNetworks(checkNetworks(section, "/n", collect()), [foreign], false, new Set());
    const [modify] = actionsOf({ networks: [{ name: "optn0", ipv4_dhcp: false }] });
    expect(modify).toMatchObject({
      kind: "modify",
      adopt: { path: "/n/networks/0", allowed: false },
      changes: [{ path: "config.ipv4.dhcp", before: "true", after: "false" }],
    });
    expect(
      modify?.resource === "network" && modify.kind === "modify" && modify.after.config,
    ).toEqual({ "ipv4.dhcp": "false" });
    expect(adoptionProblems(modify === undefined ? [] : [modify], { allowUplink: false })).toEqual([
      expect.objectContaining({
        path: "/n/networks/0",
        message:
          "lxc network optn0 exists and op did not create it, so op will not take it over unless it is adopted",
      }),
    ]);
    const [adopted] = actionsOf({ networks: [{ name: "optn0", adopt: true, ipv4_dhcp: false }] });
    expect(adopted?.adopt).toEqual({ path: "/n/networks/0", allowed: true });
    // The same keys as the host has: nothing to adopt, nothing refused.
    expect(actionsOf({ networks: [{ name: "optn0", ipv4_dhcp: true }] })).toEqual([]);
    const [remove] = actionsOf({ networks: [{ name: "optn0", ensure: "absent" }] });
    expect(remove).toMatchObject({
      kind: "delete",
      adopt: { path: "/n/networks/0", allowed: false },
    });
    expect(diffNetworks([], [foreign], true, new Set())).toEqual([]);
  });

  it("refuses deleting a network a container that stays uses; one deleted this run is fine", () => {
    const used = live("optn0", {
      usedBy: ["/1.0/instances/web", "/1.0/instances/db?project=optest-p", "/1.0/profiles/x"],
    });
    const section: LxcSection = { networks: [{ name: "optn0", ensure: "absent" }] };
    const web = leavingOf({ containers: ["web"] });
    expect(resolve(section, [used], web)).toEqual([
      "/plugins/lxc/networks/0/ensure: network optn0 is in use by instance db (project optest-p), profile x, which stay; detach them first (or delete the containers in the same run)",
    ]);
    const byWeb = live("optn0", { usedBy: ["/1.0/instances/web"] });
    expect(resolve(section, [byWeb], web)).toEqual([]);
    // A profile deleted in the same run no longer holds it; one of another project still does.
    const byProfiles = live("optn0", {
      usedBy: ["/1.0/profiles/x", "/1.0/profiles/x?project=optest-p"],
    });
    expect(resolve(section, [byProfiles], leavingOf({ profiles: ["x"] }))).toEqual([
      "/plugins/lxc/networks/0/ensure: network optn0 is in use by profile x (project optest-p), which stays; detach it first (or delete the containers in the same run)",
    ]);
    expect(resolve(section, [byProfiles], leavingOf({ profiles: ["x", "optest-p/x"] }))).toEqual(
      [],
    );
  });
});

describe("a container's network", () => {
  it("is its eth0 NIC, and not with a bridge or a veth", () => {
    const problems = collect();
    const devices = {};
    expect(
      attachNetwork({ id: "web", network: "optn0" }, "/c/0", undefined, devices, problems),
    ).toBe("optn0");
    expect(devices).toEqual({ eth0: { type: "nic", network: "optn0", name: "eth0" } });
    attachNetwork({ id: "web", network: "optn0", bridge: "br0" }, "/c/1", "br0", {}, problems);
    attachNetwork({ id: "web", network: "optn0", veth: "v0" }, "/c/2", undefined, {}, problems);
    expect(problems.lines).toEqual([
      '/c/1/network: a container attaches to a managed network or to a bridge, not both: remove "network" or /c/1/bridge',
      '/c/2/network: a container attaches to a managed network or to a bridge, not both: remove "network" or /c/2/veth',
    ]);
  });

  it("must exist or be declared present", () => {
    const problems = collect();
    const declared = checkNetworks(
      { networks: [{ name: "optn1" }, { name: "optn2", ensure: "absent" }] },
      "/n",
      problems,
    );
    const use = (network: string, path: string) =>
      checkContainerNetwork(
        { name: "web", project: "default", path, network },
        declared,
        [live("optn0")],
        problems,
      );
    use("optn0", "/c/0");
    use("optn1", "/c/1");
    use("optn2", "/c/2");
    use("optn3", "/c/3");
    expect(problems.lines).toEqual([
      '/c/2/network: network optn2 is marked "ensure": "absent" at /n/networks/1, but web uses it',
      "/c/3/network: network optn3 is neither an Incus managed network on this host (incus network list) nor declared under plugins.lxc.networks",
    ]);
  });
});

describe("diffNetworks", () => {
  const desired = (section: LxcSection) => checkNetworks(section, "/n", collect());

  it("creates, changes only the keys the file gives, and is quiet when they match", () => {
    const wanted = desired({
      networks: [
        { name: "optn0", ipv4_dhcp: true },
        { name: "optn1", ipv4_address: "198.18.212.1/24" },
      ],
    });
    // Incus filled in ipv4.nat and ipv6.address itself: not the file's, so no change.
    const current = live("optn0", {
      config: {
        "ipv4.dhcp": "false",
        "ipv4.nat": "true",
        "ipv6.address": "fd42::1/64",
        "user.op.managed": "true",
      },
    });
    const actions = diffNetworks(wanted, [current], false, new Set());
    expect(actions.map((a) => [a.kind, a.id, a.reason])).toEqual([
      ["modify", "optn0", "ipv4.dhcp false → true"],
      ["create", "optn1", "new bridge network 198.18.212.1/24"],
    ]);
    const same = live("optn0", { config: { "ipv4.dhcp": "true", "user.op.managed": "true" } });
    expect(diffNetworks(wanted.slice(0, 1), [same], false, new Set())).toEqual([]);
  });

  it("prunes only networks op created, and a delete waits for the deletes of its containers", () => {
    const ours = live("optn0", { usedBy: ["/1.0/instances/web", "/1.0/instances/db"] });
    const theirs = live("lxdbr0", { managed: false });
    const actions = diffNetworks([], [ours, theirs], true, new Set(["web"]));
    expect(actions).toEqual([
      expect.objectContaining({
        kind: "delete",
        id: "optn0",
        reason: "not in the file (prune)",
        needs: [{ plugin: "lxc", resource: "container", id: "web" }],
      }),
    ]);
    expect(diffNetworks([], [ours], false, new Set())).toEqual([]);
  });

  it("never prunes or deletes a network a bound client inherits from the default project", () => {
    const inherited = live("optn1", { inherited: true });
    expect(diffNetworks([], [inherited], true, new Set())).toEqual([]);
    const absent = desired({ networks: [{ name: "optn1", ensure: "absent" }] });
    expect(diffNetworks(absent, [inherited], true, new Set())).toEqual([]);
  });

  it("makes a container on a network need it, through diffLxc", () => {
    const actions = diffLxc(
      {
        prune: false,
        images: [],
        absent: [],
        networks: desired({ networks: [{ name: "optn0" }] }),
        containers: [
          {
            name: "web",
            project: "default",
            id: "web",
            path: "/c/0",
            image: "op-test/busybox",
            running: true,
            profiles: ["default"],
            config: {},
            devices: { eth0: { type: "nic", network: "optn0", name: "eth0" } },
            mounts: [],
            stopTimeout: 30,
            restartAllowed: false,
            networks: [{ network: "optn0", path: "/c/0" }],
          },
        ],
      },
      { containers: [], bridges: {}, aliases: {}, networks: [] },
    );
    expect(actions.find((a) => a.resource === "container")?.needs).toEqual([
      { plugin: "lxc", resource: "network", id: "optn0" },
    ]);
  });
});

describe("networks as the query gives them", () => {
  it("keeps volatile keys apart, and hides them from --json unless --all", () => {
    const network = liveNetwork({
      name: "optn0",
      type: "bridge",
      managed: true,
      description: "",
      config: { "ipv4.address": "198.18.213.1/24", "volatile.bridge.hwaddr": "00:16:3e:00:00:01" },
      used_by: ["/1.0/instances/web?project=p"],
    });
    expect(network.config).toEqual({ "ipv4.address": "198.18.213.1/24" });
    expect(network.volatile).toEqual({ "volatile.bridge.hwaddr": "00:16:3e:00:00:01" });
    expect(userOf(network.usedBy[0] ?? "")).toEqual({
      words: "instance web (project p)",
      ref: { plugin: "lxc", resource: "container", id: "p/web" },
    });
    const state = { containers: [], bridges: {}, aliases: {}, networks: [network] };
    expect(JSON.stringify(lxcQueryJson(state, { all: false }))).not.toContain("volatile");
    expect(JSON.stringify(lxcQueryJson(state, { all: true }))).toContain("volatile.bridge.hwaddr");
    const table = reportLxc(state).find((report) => report.title === "networks");
    expect(table?.rows).toEqual([
      [
        "optn0",
        "default",
        "bridge",
        "198.18.213.1/24",
        "-",
        "-",
        "-",
        "instance web (project p)",
        "no",
      ],
    ]);
  });
});

describe("applyNetwork", () => {
  // A fake Incus client: the race it stands for (a host link vanishing while Incus sets a
  // bridge up) cannot be made to happen on cue against the real daemon.
  function flakyIncus(failures: number, message: string) {
    const calls: string[] = [];
    const client = {
      request: async (method: string, path: string) => {
        calls.push(`${method} ${path}`);
        if (calls.length <= failures) throw new OpError("command-failed", message);
        return undefined;
      },
    } as unknown as IncusClient;
    return { calls, client };
  }
  const race =
    'deleting network optn0: Incus refused: Failed to delete bridge children interfaces: Failed to run: ip -d -j link show veth1: exit status 1 (Device "veth1" does not exist.)';
  const remove = {
    kind: "delete",
    plugin: "lxc",
    resource: "network",
    id: "optn0",
    reason: "ensure: absent",
    before: live("optn0"),
  } as const;

  it("tries a call again when a host link vanished under Incus, five times at most", async () => {
    const once = flakyIncus(1, race);
    await applyNetwork(remove, once.client);
    expect(once.calls).toEqual(["DELETE /1.0/networks/optn0", "DELETE /1.0/networks/optn0"]);
    const always = flakyIncus(9, race);
    await expect(applyNetwork(remove, always.client)).rejects.toThrow(/does not exist/);
    expect(always.calls).toHaveLength(5);
  });

  it("does not try again after any other refusal", async () => {
    const other = flakyIncus(1, "deleting network optn0: Incus refused: network is in use");
    await expect(applyNetwork(remove, other.client)).rejects.toThrow(/in use/);
    expect(other.calls).toHaveLength(1);
  });
});
