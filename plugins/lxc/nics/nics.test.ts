/**
 * `nics[]` from the file to the devices and checks prepare makes of it, and the drift diff
 * finds on a NIC other than eth0. The host is a fake here (a map of links and sysfs texts):
 * the real links, bridges and Incus are in test/lxc-nics.system.test.ts.
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../../../src/errors.js";
import type { Sys } from "../../../src/host/sys.js";
import type { Ctx } from "../../../src/plugin.js";
import { diffLxc } from "../diff.js";
import type { LiveNetwork } from "../networks/types.js";
import { prepareLxc } from "../prepare.js";
import type { LiveContainer, LxcContainerSpec, LxcLive, LxcSection } from "../types.js";
import { containerVeths } from "../veths.js";

const links: Record<string, { name: string; master?: string }> = {
  optdum0: { name: "optdum0" },
  optlbf: { name: "optlbf" },
  optlbn: { name: "optlbn" },
};
const texts: Record<string, string> = {
  "/sys/class/net/optlbf/bridge/vlan_filtering": "1\n",
  "/sys/class/net/optlbn/bridge/vlan_filtering": "0\n",
};
const sys = {
  link: (name: string) => links[name],
  text: (path: string) => texts[path],
} as unknown as Sys;
const ctx = {
  log: { debug() {}, info() {}, warn() {} },
  cacheDir: undefined,
  host: { sys },
} as unknown as Ctx;
const managed: LiveNetwork = {
  name: "optn0",
  project: "default",
  type: "bridge",
  managed: true,
  description: "",
  config: {
    "ipv4.address": "198.18.210.1/24",
    "ipv6.address": "fd00:18:210::1/64",
    "ipv6.dhcp.stateful": "true",
  },
  volatile: {},
  usedBy: [],
};
const live: LxcLive = {
  containers: [],
  bridges: { optob0: "ovs", optlbf: "linux", optlbn: "linux" },
  aliases: { "op-test/busybox": "aa" },
  networks: [managed],
};
const env = {
  defaultImage: "op-test/busybox",
  declaredLinks: [{ name: "optdecl0", path: "/plugins/network/interfaces/0/name" }],
};

const instanceFields = { architecture: "x86_64", ephemeral: false, stateful: false };
const section = (...containers: LxcContainerSpec[]): LxcSection => ({ containers });

async function problemsOf(file: LxcSection): Promise<string[]> {
  const error = await prepareLxc(file, live, ctx, env).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return [...(error as OpError).details];
}

describe("nics: devices", () => {
  it("makes one device per NIC, with vi{id} and vi{id}n{k} as default host names", async () => {
    const desired = await prepareLxc(
      section({
        id: 901,
        nics: [
          { type: "bridged", bridge: "optlbf", vlan: 10, mtu: 1400 },
          { type: "bridged", bridge: "optob0", vlan: 20, hwaddr: "00:16:3E:01:02:03" },
          { name: "lan", type: "macvlan", parent: "optdum0" },
          { type: "network", network: "optn0", ipv4: "198.18.210.20", ipv6: "fd00:18:210::20" },
        ],
      }),
      live,
      ctx,
      env,
    );
    const [ct] = desired.containers;
    expect(ct?.devices).toEqual({
      eth0: {
        type: "nic",
        nictype: "bridged",
        parent: "optlbf",
        host_name: "vi901",
        name: "eth0",
        mtu: "1400",
        vlan: "10",
      },
      eth1: {
        type: "nic",
        nictype: "bridged",
        parent: "optob0",
        host_name: "vi901n1",
        name: "eth1",
        hwaddr: "00:16:3e:01:02:03",
        vlan: "20",
      },
      lan: { type: "nic", nictype: "macvlan", parent: "optdum0", name: "lan" },
      eth3: {
        type: "nic",
        network: "optn0",
        name: "eth3",
        "ipv4.address": "198.18.210.20",
        "ipv6.address": "fd00:18:210::20",
      },
    });
    expect(ct?.nics).toEqual([
      { device: "eth0", bridge: "optlbf", veth: "vi901", kind: "linux", vlan: 10 },
      { device: "eth1", bridge: "optob0", veth: "vi901n1", kind: "ovs", vlan: 20 },
    ]);
    expect(ct?.networks).toEqual([
      {
        network: "optn0",
        path: "/plugins/lxc/containers/0/nics/3",
        ipv4: "198.18.210.20",
        ipv6: "fd00:18:210::20",
      },
    ]);
  });

  it("lets the network section see every bridged NIC's host name, custom ones included", () => {
    expect(
      containerVeths(
        section({
          id: 5,
          nics: [
            { type: "bridged", bridge: "br0" },
            { type: "bridged", bridge: "br1", host_name: "web-lan" },
            { type: "macvlan", parent: "optdum0" },
          ],
        }),
      ),
    ).toEqual([
      { veth: "vi5", bridge: "br0" },
      { veth: "web-lan", bridge: "br1" },
    ]);
  });

  it("writes static addresses of bridged/macvlan NICs as cloud-init network config v2", async () => {
    const spec = {
      id: 902,
      cloud_init: {},
      nics: [
        { type: "bridged", bridge: "optlbf", ipv4: "198.18.7.2/24", ipv6: "fd00:18:7::2/64" },
        { type: "macvlan", parent: "optdum0" },
      ],
    } as LxcContainerSpec;
    const desired = await prepareLxc(section(spec), live, ctx, env);
    const config = desired.containers[0]?.config["cloud-init.network-config"];
    expect(JSON.parse(config ?? "{}")).toEqual({
      network: {
        version: 2,
        ethernets: {
          eth0: { dhcp4: false, addresses: ["198.18.7.2/24", "fd00:18:7::2/64"] },
          eth1: { dhcp4: true },
        },
      },
    });
  });
});

describe("nics: what is refused", () => {
  it("two NICs with the same name or host_name, in one container or across two", async () => {
    expect(
      await problemsOf(
        section(
          {
            id: 903,
            nics: [
              { type: "bridged", bridge: "optlbf", host_name: "optv0" },
              { name: "eth0", type: "bridged", bridge: "optlbf" },
              { type: "bridged", bridge: "optlbf", host_name: "optv0" },
            ],
          },
          { id: 904, nics: [{ type: "bridged", bridge: "optlbf", host_name: "optv0" }] },
        ),
      ),
    ).toEqual([
      '/plugins/lxc/containers/0/nics/1/name: NIC name "eth0" is also used by /plugins/lxc/containers/0/nics/0',
      '/plugins/lxc/containers/0/nics/2/host_name: host_name "optv0" is also used by /plugins/lxc/containers/0/nics/0/host_name',
      '/plugins/lxc/containers/1/nics/0: veth "optv0" is also used by /plugins/lxc/containers/0/nics/0',
    ]);
  });

  it("a macvlan parent that neither exists nor is declared; a declared one is fine", async () => {
    expect(
      await problemsOf(
        section({
          id: 905,
          nics: [
            { type: "macvlan", parent: "optnone0" },
            { type: "macvlan", parent: "optdecl0" },
          ],
        }),
      ),
    ).toEqual([
      '/plugins/lxc/containers/0/nics/0/parent: parent link "optnone0" does not exist on this host and plugins.network does not declare it',
    ]);
  });

  it("a static lease outside the managed network's subnet, on its own address, or with another prefix", async () => {
    expect(
      await problemsOf(
        section({
          id: 906,
          nics: [
            { type: "network", network: "optn0", ipv4: "198.18.211.5", ipv6: "fd00:18:210::1" },
            { type: "network", network: "optn0", ipv4: "198.18.210.5/16" },
          ],
        }),
      ),
    ).toEqual([
      "/plugins/lxc/containers/0/nics/0/ipv4: 198.18.211.5 is outside network optn0's subnet 198.18.210.1/24",
      "/plugins/lxc/containers/0/nics/0/ipv6: fd00:18:210::1 is network optn0's own address (fd00:18:210::1/64)",
      "/plugins/lxc/containers/0/nics/1/ipv4: the prefix /16 is not network optn0's /24; give the address alone (its DHCP server hands out the subnet's prefix)",
    ]);
  });

  it("a lease on a network that does not hand out addresses by DHCP", async () => {
    const lines = await problemsOf({
      networks: [
        {
          name: "optn2",
          ipv4_address: "198.18.213.1/24",
          ipv4_dhcp: false,
          ipv6_address: "fd00:18:213::1/64",
        },
      ],
      containers: [
        {
          id: 915,
          nics: [
            { type: "network", network: "optn2", ipv4: "198.18.213.9", ipv6: "fd00:18:213::9" },
          ],
        },
      ],
    });
    expect(lines).toEqual([
      "/plugins/lxc/containers/0/nics/0/ipv4: network optn2 has DHCP off (ipv4.dhcp false), so it cannot lease 198.18.213.9; turn ipv4_dhcp on or drop the address",
      '/plugins/lxc/containers/0/nics/0/ipv6: network optn2 has no stateful DHCPv6 (ipv6.dhcp.stateful is not true), so it cannot lease fd00:18:213::9; set config "ipv6.dhcp.stateful": "true" on it or drop the address',
    ]);
  });

  it("checks a lease against the file's subnet when the file declares the network", async () => {
    const lines = await problemsOf({
      networks: [{ name: "optn1", ipv4_address: "198.18.212.1/24" }],
      containers: [
        { id: 907, nics: [{ type: "network", network: "optn1", ipv4: "198.18.210.9" }] },
      ],
    });
    expect(lines).toEqual([
      "/plugins/lxc/containers/0/nics/0/ipv4: 198.18.210.9 is outside network optn1's subnet 198.18.212.1/24",
    ]);
  });

  it("a VLAN on a bridge type that cannot carry it", async () => {
    expect(
      await problemsOf(
        section({
          id: 908,
          nics: [
            { type: "bridged", bridge: "optlbn", vlan: 10 },
            { type: "bridged", bridge: "optlbf", vlan: 10 },
          ],
        }),
      ),
    ).toEqual([
      "/plugins/lxc/containers/0/nics/0/vlan: bridge optlbn is a Linux bridge without VLAN filtering, so it cannot carry VLAN 10: turn its vlan_filtering on (ip link set dev optlbn type bridge vlan_filtering 1), or use an Open vSwitch bridge",
    ]);
    expect(
      await problemsOf(
        section({ id: 914, nics: [{ type: "network", network: "optn0", vlan: 10 } as never] }),
      ),
    ).toEqual([
      '/plugins/lxc/containers/0/nics/0/vlan: "vlan" does not apply to a NIC of type network',
    ]);
  });

  it("nics together with the single-NIC fields, and a NIC without what attaches it", async () => {
    expect(
      await problemsOf(
        section({
          id: 909,
          bridge: "optlbf",
          network: "optn0",
          nics: [{ type: "bridged" }, { type: "macvlan", parent: "optdum0", host_name: "x" }],
        }),
      ),
    ).toEqual([
      '/plugins/lxc/containers/0/bridge: "bridge" is the shorthand of a single NIC and cannot be given with "nics" (/plugins/lxc/containers/0/nics): describe that NIC in "nics" instead',
      '/plugins/lxc/containers/0/network: "network" is the shorthand of a single NIC and cannot be given with "nics" (/plugins/lxc/containers/0/nics): describe that NIC in "nics" instead',
      '/plugins/lxc/containers/0/nics/0: a NIC of type bridged needs "bridge"',
      '/plugins/lxc/containers/0/nics/1/host_name: "host_name" does not apply to a NIC of type macvlan',
    ]);
  });

  it("a static address on bridged/macvlan without cloud_init, without a prefix, or with cloud_init.network_config", async () => {
    const lines = await problemsOf(
      section(
        { id: 910, nics: [{ type: "bridged", bridge: "optlbf", ipv4: "198.18.7.2/24" }] },
        {
          id: 911,
          cloud_init: {},
          nics: [{ type: "macvlan", parent: "optdum0", ipv4: "198.18.7.3" }],
        } as LxcContainerSpec,
        {
          id: 916,
          cloud_init: {},
          config: { "cloud-init.network-config": "{}" },
          nics: [{ type: "macvlan", parent: "optdum0", ipv4: "198.18.7.4/24" }],
        } as LxcContainerSpec,
        {
          id: 912,
          cloud_init: { network_config: { version: 2 } },
          nics: [{ type: "macvlan", parent: "optdum0", ipv6: "fd00::3/64" }],
        } as LxcContainerSpec,
      ),
    );
    expect(lines).toEqual([
      '/plugins/lxc/containers/0/nics/0/ipv4: a static address on a bridged NIC is set inside the container by cloud-init, and op cannot tell at plan time whether the image runs it: add "cloud_init" to the container (with an image that has cloud-init), or use a NIC of type network, whose addresses are DHCP leases',
      '/plugins/lxc/containers/1/nics/0/ipv4: "198.18.7.3" is not ADDRESS/PREFIX: a static address on a macvlan NIC needs its prefix (e.g. 198.18.7.2/24)',
      '/plugins/lxc/containers/2/config/cloud-init.network-config: op writes cloud-init.network-config itself for the static addresses of "nics": give the addresses in one place',
      '/plugins/lxc/containers/3/cloud_init/network_config: op writes the network config itself for the static addresses of "nics" (/plugins/lxc/containers/3/nics/0/ipv6); give the addresses in one place: either in "nics" or in cloud_init.network_config (then without ipv4/ipv6 in "nics")',
    ]);
  });
});

describe("nics: drift of a NIC other than eth0", () => {
  it("a renamed eth1 veth is a change of its own, re-plugged devices are not drift", async () => {
    const desired = await prepareLxc(
      section({
        id: 913,
        nics: [
          { type: "bridged", bridge: "optlbf" },
          { type: "bridged", bridge: "optob0" },
        ],
      }),
      live,
      ctx,
      env,
    );
    const [ct] = desired.containers;
    if (ct === undefined) throw new Error("no container");
    const running: LiveContainer = {
      name: ct.name,
      project: "default",
      managed: true,
      id: ct.id,
      status: "running",
      image: ct.image,
      profiles: ct.profiles,
      config: ct.config,
      devices: ct.devices,
      put: { ...instanceFields, description: "", volatile: {} },
      veth: "vi913",
      master: "optlbf",
      nicLinks: { eth1: { veth: "renamed1" } },
      addresses: [],
      nicUp: true,
    };
    const actions = diffLxc(desired, { ...live, containers: [running] });
    const modify = actions.find((action) => action.kind === "modify");
    expect(modify?.kind === "modify" ? modify.changes : undefined).toEqual([
      { path: "veth eth1", before: "renamed1", after: "vi913n1" },
      { path: "bridge eth1", after: "optob0" },
    ]);
    const settled = diffLxc(desired, {
      ...live,
      containers: [{ ...running, nicLinks: { eth1: { veth: "vi913n1", master: "optob0" } } }],
    });
    expect(settled.filter((action) => action.resource === "container")).toEqual([]);
    const retagged = diffLxc(
      {
        ...desired,
        containers: [
          { ...ct, devices: { ...ct.devices, eth1: { ...ct.devices.eth1, vlan: "40" } } },
        ],
      },
      { ...live, containers: [running] },
    );
    expect(retagged.find((action) => action.kind === "modify")?.reason).toBe(
      "change device eth1: optob0/vi913n1 → optob0/vi913n1 vlan 40",
    );
  });
});
