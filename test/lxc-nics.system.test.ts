/**
 * `nics[]` on the real Incus daemon: a container with one NIC on a Linux bridge and one on an
 * Open vSwitch bridge with a VLAN tag (host names vi{id} and vi{id}n1), a veth of the second
 * renamed by hand and put back; a macvlan NIC on a veth the test makes; a NIC on a
 * managed network with a static DHCP lease; the refusals prepare makes against the live host.
 * Every bridge (`optlb-…`, `optob-…`), veth pair (`optdm…`/`optdp…`), network (`optn…`, 198.18.2xx.0/24, no
 * NAT) and container here is the test's own and is removed after, also on failure.
 */
import { randomInt } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import {
  createLinuxBridge,
  createOvsBridge,
  deleteIfPresent,
  dhcpAddress,
  inContainer,
  linkInfo,
  ovsPorts,
  plan,
  reconcile,
  removeBridge,
  removeContainers,
  sh,
  testEntry,
  uid,
} from "./support/lxc.js";

const containers: string[] = [];
const bridges: string[] = [];
const dummies: string[] = [];
const networks: string[] = [];
afterAll(async () => {
  await removeContainers(containers);
  for (const name of networks) await deleteIfPresent(`/1.0/networks/${name}`);
  for (const name of bridges) removeBridge(name);
  for (const name of dummies) if (linkInfo(name) !== undefined) sh("ip", ["link", "del", name]);
});

function entry(fields: Record<string, unknown> = {}) {
  return testEntry(containers, fields);
}

/** A veth pair of the test's own, up (the kernel here has no dummy links): the parent end. */
function parentLink(): string {
  const id = uid();
  const name = `optdm${id}`;
  dummies.push(name);
  sh("ip", ["link", "add", name, "type", "veth", "peer", "name", `optdp${id}`]);
  sh("ip", ["link", "set", name, "up"]);
  sh("ip", ["link", "set", `optdp${id}`, "up"]);
  return name;
}

async function problemsOf(section: object): Promise<string[]> {
  const error = await plan(section).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return [...(error as OpError).details];
}

describe("lxc nics: a Linux bridge and an OVS bridge with a VLAN tag", () => {
  const linux = createLinuxBridge();
  bridges.push(linux);
  const ovs = createOvsBridge();
  bridges.push(ovs);
  const ct = entry({
    nics: [
      { type: "bridged", bridge: linux },
      { type: "bridged", bridge: ovs, vlan: 30 },
    ],
  });
  const first = `vi${ct.id}`;
  const second = `vi${ct.id}n1`;

  it("creates it with vi{id} in the Linux bridge and vi{id}n1 tagged on the OVS bridge", async () => {
    const run = await reconcile({ containers: [ct] });
    expect(Object.fromEntries(run.errors)).toEqual({});
    expect(run.remaining).toEqual([]);
    expect(linkInfo(first)?.master).toBe(linux);
    expect(ovsPorts(ovs)).toEqual([second]);
    expect(sh("ovs-vsctl", ["get", "port", second, "tag"]).trim()).toBe("30");
    expect(inContainer(ct.name, "ls /sys/class/net").split(/\s+/)).toEqual(
      expect.arrayContaining(["eth0", "eth1"]),
    );
    expect((await reconcile({ containers: [ct] })).actions).toEqual([]);
  });

  it("renames back the second NIC's veth renamed by hand, keeping its port and tag", async () => {
    const other = `optmp${uid()}`;
    sh("ip", ["link", "set", second, "down"]);
    sh("ip", ["link", "set", second, "name", other]);
    sh("ip", ["link", "set", other, "up"]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]).toMatchObject({
      kind: "modify",
      changes: expect.arrayContaining([{ path: "veth eth1", before: other, after: second }]),
    });
    expect(Object.fromEntries(run.errors)).toEqual({});
    expect(run.remaining).toEqual([]);
    expect(linkInfo(other)).toBeUndefined();
    expect(linkInfo(second)).toBeDefined();
    expect(ovsPorts(ovs)).toEqual([second]);
    expect(sh("ovs-vsctl", ["get", "port", second, "tag"]).trim()).toBe("30");
    expect(linkInfo(first)?.master).toBe(linux);
  });

  it("puts back, with its VLAN tag, the OVS port of the second NIC deleted by hand", async () => {
    sh("ovs-vsctl", ["del-port", ovs, second]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]).toMatchObject({
      kind: "modify",
      changes: [{ path: "bridge eth1", after: ovs }],
    });
    expect(Object.fromEntries(run.errors)).toEqual({});
    expect(run.remaining).toEqual([]);
    expect(ovsPorts(ovs)).toEqual([second]);
    expect(sh("ovs-vsctl", ["get", "port", second, "tag"]).trim()).toBe("30");
  });

  it("refuses a VLAN on a Linux bridge without VLAN filtering", async () => {
    const lines = await problemsOf({
      containers: [{ ...ct, nics: [{ type: "bridged", bridge: linux, vlan: 5 }] }],
    });
    expect(lines).toEqual([
      `/plugins/lxc/containers/0/nics/0/vlan: bridge ${linux} is a Linux bridge without VLAN filtering, so it cannot carry VLAN 5: turn its vlan_filtering on (ip link set dev ${linux} type bridge vlan_filtering 1), or use an Open vSwitch bridge`,
    ]);
  });
});

describe("lxc nics: macvlan", () => {
  it("puts a macvlan NIC on a veth the test made, and refuses a parent that does not exist", async () => {
    const parent = parentLink();
    const ct = entry({ nics: [{ type: "macvlan", parent }] });
    const run = await reconcile({ containers: [ct] });
    expect(Object.fromEntries(run.errors)).toEqual({});
    expect(run.remaining).toEqual([]);
    // A macvlan link's peer is its parent: the container's eth0 sits on the test's veth.
    expect(Number(inContainer(ct.name, "cat /sys/class/net/eth0/iflink").trim())).toBe(
      linkInfo(parent)?.ifindex,
    );
    expect((await reconcile({ containers: [ct] })).actions).toEqual([]);

    const missing = `optdm${uid()}`;
    expect(
      await problemsOf({ containers: [{ ...ct, nics: [{ type: "macvlan", parent: missing }] }] }),
    ).toEqual([
      `/plugins/lxc/containers/0/nics/0/parent: parent link "${missing}" does not exist on this host and plugins.network does not declare it`,
    ]);
  });
});

describe("lxc nics: a managed network with a static lease", () => {
  it("gives the container the leased address by DHCP, and refuses one outside the subnet", async () => {
    const octet = randomInt(200, 251);
    const name = `optn${uid()}`;
    networks.push(name);
    const net = {
      name,
      ipv4_address: `198.18.${octet}.1/24`,
      ipv4_nat: false,
      ipv4_dhcp: true,
      ipv6_address: "none",
    };
    const ct = entry({ nics: [{ type: "network", network: name, ipv4: `198.18.${octet}.77` }] });
    const run = await reconcile({ networks: [net], containers: [ct] });
    expect(Object.fromEntries(run.errors)).toEqual({});
    expect(run.remaining).toEqual([]);
    expect(await dhcpAddress(ct.name)).toBe(`198.18.${octet}.77`);

    const outside = `198.18.${octet === 250 ? 249 : octet + 1}.77`;
    expect(
      await problemsOf({
        networks: [net],
        containers: [{ ...ct, nics: [{ type: "network", network: name, ipv4: outside }] }],
      }),
    ).toEqual([
      `/plugins/lxc/containers/0/nics/0/ipv4: ${outside} is outside network ${name}'s subnet 198.18.${octet}.1/24`,
    ]);
  });
});
