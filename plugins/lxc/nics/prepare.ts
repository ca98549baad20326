/**
 * A container's `nics[]` as Incus NIC devices: `bridged` (a host veth in a Linux or OVS
 * bridge), `macvlan` (on a host link) and `network` (an Incus managed network, where static
 * addresses are DHCP leases). The single-NIC fields (`bridge`, `veth`, `network_type`,
 * `network`) stay the shorthand of one `eth0` and are turned into devices by prepare.ts as
 * before; this file only reads the list form. Pure: what needs the host is in host.ts.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { LxcContainerSpec, LxcNicSpec } from "../../../src/generated/lxc.js";
import { cloudInitKeys } from "../cloud-init.js";
import type { DesiredNic, Devices } from "../types.js";
import { defaultVethName } from "../veths.js";

/** Where a NIC is attached to an Incus managed network, with its static leases. */
export interface NetworkAttachment {
  network: string;
  /** JSON path of the NIC (or of the container, for the `network` shorthand). */
  path: string;
  /** The static addresses as the file gives them (a prefix, if any, is checked, not sent). */
  ipv4?: string;
  ipv6?: string;
}

/** A macvlan NIC's parent link, which must exist on the host or be declared. */
export interface MacvlanParent {
  link: string;
  path: string;
}

export interface PreparedNics {
  devices: Devices;
  /** The bridged NICs: their veths are renamed and enrolled by op when they drift. */
  bridged: DesiredNic[];
  networks: NetworkAttachment[];
  /** The cloud-init network config (v2) for static addresses on bridged/macvlan NICs. */
  networkConfig?: string;
}

interface ProblemSink {
  add(path: string, message: string): void;
}

const ifnamePattern = /^(?!\.\.?$)[^/:\s]{1,15}$/;

/** The shorthand fields a container with `nics` may not give. */
const shorthandFields = ["bridge", "veth", "network_type", "network"] as const;

/** The host veth of a container's NIC at `index` when the file names none. */
export function nicHostName(id: string, index: number): string {
  return index === 0 ? defaultVethName(id) : `${defaultVethName(id)}n${index}`;
}

/** The NIC's name (and device name) when the file names none. */
export function nicName(nic: LxcNicSpec, index: number): string {
  return nic.name ?? `eth${index}`;
}

/** The fields each type takes besides the common ones (name, type, mtu, hwaddr, addresses). */
const typeFields: Record<LxcNicSpec["type"], readonly (keyof LxcNicSpec)[]> = {
  bridged: ["bridge", "host_name", "vlan"],
  macvlan: ["parent", "vlan"],
  network: ["network"],
};
const attachField = { bridged: "bridge", macvlan: "parent", network: "network" } as const;
const typedOnly: readonly (keyof LxcNicSpec)[] = [
  "bridge",
  "parent",
  "network",
  "host_name",
  "vlan",
];

/**
 * The `nics` list of a container, or undefined when it has none (the shorthand fields then
 * say what its one NIC is). Problems go to `problems` with their JSON paths.
 */
export function prepareNics(
  spec: LxcContainerSpec,
  path: string,
  id: string,
  problems: ProblemSink,
): PreparedNics | undefined {
  if (spec.nics === undefined) return undefined;
  const shorthand = shorthandFields.filter(
    (field) =>
      spec[field] !== undefined ||
      (field === "network_type" && spec.properties?.network_type !== undefined),
  );
  for (const field of shorthand) {
    const where = spec[field] === undefined ? `${path}/properties/${field}` : `${path}/${field}`;
    problems.add(
      where,
      `"${field}" is the shorthand of a single NIC and cannot be given with "nics" (${path}/nics): describe that NIC in "nics" instead`,
    );
  }
  const prepared: PreparedNics = { devices: {}, bridged: [], networks: [] };
  const names = new Map<string, string>();
  const hostNames = new Map<string, string>();
  const statics: { name: string; nic: LxcNicSpec; path: string }[] = [];
  for (const [index, nic] of spec.nics.entries()) {
    const at = `${path}/nics/${index}`;
    const name = nicName(nic, index);
    const first = names.get(name);
    if (first !== undefined) {
      problems.add(
        nic.name === undefined ? at : `${at}/name`,
        `NIC name "${name}" is also used by ${first}`,
      );
      continue;
    }
    names.set(name, nic.name === undefined ? at : `${at}/name`);
    for (const field of typedOnly) {
      if (nic[field] !== undefined && !typeFields[nic.type].includes(field))
        problems.add(`${at}/${field}`, `"${field}" does not apply to a NIC of type ${nic.type}`);
    }
    const attach = nic[attachField[nic.type]];
    if (attach === undefined) {
      problems.add(at, `a NIC of type ${nic.type} needs "${attachField[nic.type]}"`);
      continue;
    }
    const common: Record<string, string> = {
      name,
      ...(nic.mtu === undefined ? {} : { mtu: String(nic.mtu) }),
      ...(nic.hwaddr === undefined ? {} : { hwaddr: nic.hwaddr.toLowerCase() }),
    };
    const vlan: Record<string, string> = nic.vlan === undefined ? {} : { vlan: String(nic.vlan) };
    if (nic.type === "network") {
      const leases = networkLeases(nic, at, problems);
      prepared.devices[name] = {
        type: "nic",
        network: attach,
        ...common,
        ...(leases.ipv4 === undefined ? {} : { "ipv4.address": leases.ipv4 }),
        ...(leases.ipv6 === undefined ? {} : { "ipv6.address": leases.ipv6 }),
      };
      prepared.networks.push({
        network: attach,
        path: at,
        ...(leases.ipv4 === undefined ? {} : { ipv4: nic.ipv4 }),
        ...(leases.ipv6 === undefined ? {} : { ipv6: nic.ipv6 }),
      });
      continue;
    }
    if (nic.ipv4 !== undefined || nic.ipv6 !== undefined) statics.push({ name, nic, path: at });
    if (nic.type === "macvlan") {
      prepared.devices[name] = {
        type: "nic",
        nictype: "macvlan",
        parent: attach,
        ...common,
        ...vlan,
      };
      continue;
    }
    const veth = nic.host_name ?? nicHostName(id, index);
    const vethAt = nic.host_name === undefined ? at : `${at}/host_name`;
    if (!ifnamePattern.test(veth)) {
      problems.add(
        vethAt,
        `host_name "${veth}" is not a valid interface name (at most 15 characters, no /, : or whitespace); set "host_name"`,
      );
    }
    const taken = hostNames.get(veth);
    if (taken !== undefined) {
      problems.add(vethAt, `host_name "${veth}" is also used by ${taken}`);
      continue;
    }
    hostNames.set(veth, vethAt);
    prepared.devices[name] = {
      type: "nic",
      nictype: "bridged",
      parent: attach,
      host_name: veth,
      ...common,
      ...vlan,
    };
    prepared.bridged.push({
      device: name,
      bridge: attach,
      veth,
      ...(nic.vlan === undefined ? {} : { vlan: nic.vlan }),
    });
  }
  if (statics.length > 0) {
    const config = staticNetworkConfig(spec, path, statics, names, problems);
    if (config !== undefined) prepared.networkConfig = config;
  }
  return prepared;
}

/** A managed network NIC's addresses as the lease values Incus takes (no prefix). */
function networkLeases(
  nic: LxcNicSpec,
  at: string,
  problems: ProblemSink,
): { ipv4?: string; ipv6?: string } {
  const leases: { ipv4?: string; ipv6?: string } = {};
  for (const family of ["ipv4", "ipv6"] as const) {
    const value = nic[family];
    if (value === undefined) continue;
    const address = value.split("/")[0] ?? "";
    if (!(family === "ipv4" ? isIPv4 : isIPv6)(address)) {
      problems.add(
        `${at}/${family}`,
        `"${value}" is not an ${family === "ipv4" ? "IPv4" : "IPv6"} address`,
      );
      continue;
    }
    leases[family] = address;
  }
  return leases;
}

/**
 * The cloud-init network config (v2) of a container whose bridged or macvlan NICs have static
 * addresses: cloud-init is the only thing in the container that will set them, and once a
 * network config is given cloud-init configures only the NICs it lists, so the others are
 * listed with DHCP. A file that also gives `cloud_init.network_config` is refused: merging two
 * network configs would silently override one of them.
 */
function staticNetworkConfig(
  spec: LxcContainerSpec,
  path: string,
  statics: readonly { name: string; nic: LxcNicSpec; path: string }[],
  names: ReadonlyMap<string, string>,
  problems: ProblemSink,
): string | undefined {
  const cloudInit = spec.cloud_init;
  const first = statics[0] as { path: string; nic: LxcNicSpec };
  const firstAt = `${first.path}/${first.nic.ipv4 === undefined ? "ipv6" : "ipv4"}`;
  if (cloudInit === undefined) {
    problems.add(
      firstAt,
      `a static address on a ${first.nic.type} NIC is set inside the container by cloud-init, and op cannot tell at plan time whether the image runs it: add "cloud_init" to the container (with an image that has cloud-init), or use a NIC of type network, whose addresses are DHCP leases`,
    );
    return undefined;
  }
  if (cloudInit.network_config !== undefined) {
    problems.add(
      `${path}/cloud_init/network_config`,
      `op writes the network config itself for the static addresses of "nics" (${firstAt}); give the addresses in one place: either in "nics" or in cloud_init.network_config (then without ipv4/ipv6 in "nics")`,
    );
    return undefined;
  }
  const ethernets: Record<string, Record<string, unknown>> = {};
  for (const name of names.keys()) ethernets[name] = { dhcp4: true };
  let valid = true;
  for (const { name, nic, path: at } of statics) {
    const addresses: string[] = [];
    for (const family of ["ipv4", "ipv6"] as const) {
      const value = nic[family];
      if (value === undefined) continue;
      const [address = "", prefix] = value.split("/");
      const max = family === "ipv4" ? 32 : 128;
      if (
        !(family === "ipv4" ? isIPv4 : isIPv6)(address) ||
        prefix === undefined ||
        Number(prefix) > max
      ) {
        problems.add(
          `${at}/${family}`,
          `"${value}" is not ADDRESS/PREFIX: a static address on a ${nic.type} NIC needs its prefix (e.g. ${family === "ipv4" ? "198.18.7.2/24" : "fd00:18::2/64"})`,
        );
        valid = false;
        continue;
      }
      addresses.push(value);
    }
    ethernets[name] = { dhcp4: nic.ipv4 === undefined, addresses };
  }
  if (!valid) return undefined;
  return JSON.stringify({ network: { version: 2, ethernets } });
}

/** The config key the network config goes in. */
export const networkConfigKey = cloudInitKeys.networkConfig;

/** The parent links of a container's macvlan NICs, with their JSON paths. */
export function macvlanParents(spec: LxcContainerSpec, path: string): MacvlanParent[] {
  return (spec.nics ?? []).flatMap((nic, index) =>
    nic.type === "macvlan" && nic.parent !== undefined
      ? [{ link: nic.parent, path: `${path}/nics/${index}/parent` }]
      : [],
  );
}
