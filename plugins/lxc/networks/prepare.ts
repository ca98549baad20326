/**
 * The host's half of `networks[]` and of a container's `network`: what the live state decides.
 * A network that is not op's is changed or deleted only by adoption (holding.ts); its name may not
 * be a link the network plugin declares or a host link Incus does not manage; its subnet may
 * not overlap another network's or an address of the host; a network a container that stays
 * uses is not deleted; a container names a network that exists or is declared.
 */
import type { Sys } from "../../../src/host/sys.js";
import { ipv4Locals, ipv6Globals } from "../host.js";
import {
  inheritedProblem,
  type Leaves,
  type ProblemSink,
  usersThatStay,
  usersWords,
} from "../objects.js";
import { networkId } from "../refs.js";
import type { Devices, LxcContainerSpec } from "../types.js";
import { nicDevice } from "../types.js";
import { holds, overlapOf, subnetOf } from "./check.js";
import type { DesiredNetwork, LiveNetwork } from "./types.js";

/** A link another section of the file declares, with its JSON path. */
export interface DeclaredLink {
  name: string;
  path: string;
}

export interface NetworkContext {
  problems: ProblemSink;
  /** The links `plugins.network` declares. */
  declaredLinks: readonly DeclaredLink[];
  /** The host's files, read only when there are networks to check. */
  sys: () => Sys;
  /** The containers and profiles this run deletes: they no longer hold anything. */
  leaving: Leaves;
}

export function resolveNetworks(
  networks: readonly DesiredNetwork[],
  live: readonly LiveNetwork[],
  context: NetworkContext,
): void {
  if (networks.length === 0) return;
  const { problems } = context;
  const sys = context.sys();
  const byId = new Map(live.map((network) => [networkId(network.project, network.name), network]));
  const hostAddresses = hostAddressesOf(sys);
  const declared = new Set(networks.map((network) => networkId(network.project, network.name)));
  for (const network of networks) {
    const current = byId.get(networkId(network.project, network.name));
    const link = context.declaredLinks.find((declared) => declared.name === network.name);
    if (link !== undefined) {
      problems.add(
        `${network.path}/name`,
        `"${network.name}" is also a link that plugins.network declares at ${link.path}; an Incus managed network makes a bridge of that name, so the two would fight over it: rename one`,
      );
    }
    if (current?.inherited) {
      problems.add(`${network.path}/name`, inheritedProblem(`network ${network.name}`));
      continue;
    }
    if (network.ensure === "absent") {
      if (current !== undefined) deletable(network, current, context);
      continue;
    }
    if (current === undefined) {
      if (sys.link(network.name) !== undefined) {
        problems.add(
          `${network.path}/name`,
          `a link named ${network.name} already exists on this host and is not an Incus managed network; Incus cannot create a bridge of that name`,
        );
      }
    } else if (current.type !== network.type) {
      problems.add(
        `${network.path}/type`,
        `network ${network.name} is of type ${current.type} on this host, not ${network.type}; op does not change a network's type`,
      );
    }
    for (const other of live) {
      if (other.name === network.name && other.project === network.project) continue;
      // A declared one is checked against the file's value (check.ts), not its live one.
      if (declared.has(networkId(other.project, other.name))) continue;
      const clash = overlapOf(network.config, other.config);
      if (clash !== undefined) {
        problems.add(
          network.paths[clash.key] ?? network.path,
          `${clash.mine} overlaps ${clash.theirs} of Incus network ${other.name} on this host; each network needs a subnet of its own`,
        );
      }
    }
    hostOverlap(network, current, hostAddresses, problems);
  }
}

/**
 * op deletes a network only once no container that stays uses it (one op did not create only
 * by adoption: the diff marks it).
 */
function deletable(network: DesiredNetwork, current: LiveNetwork, context: NetworkContext): void {
  const users = usersThatStay(current.usedBy, context.leaving);
  if (users.length > 0) {
    context.problems.add(
      `${network.path}/ensure`,
      `network ${network.name} is in use by ${usersWords(users)}, which stay${users.length === 1 ? "s" : ""}; detach ${users.length === 1 ? "it" : "them"} first (or delete the containers in the same run)`,
    );
  }
}

/** The host's own addresses (IPv4 and global IPv6), as the kernel lists them. */
function hostAddressesOf(sys: Sys): string[] {
  return [
    ...ipv4Locals(sys.text("/proc/net/fib_trie") ?? ""),
    ...ipv6Globals(sys.text("/proc/net/if_inet6") ?? ""),
  ];
}

/** An address of the host in the network's subnet, other than the network's own bridge's. */
function hostOverlap(
  network: DesiredNetwork,
  current: LiveNetwork | undefined,
  hostAddresses: readonly string[],
  problems: ProblemSink,
): void {
  for (const key of ["ipv4.address", "ipv6.address"]) {
    const subnet = subnetOf(network.config[key]);
    if (subnet === undefined) continue;
    const own = subnetOf(current?.config[key])?.address;
    const taken = hostAddresses.find((address) => address !== own && holds(subnet, address));
    if (taken !== undefined) {
      problems.add(
        network.paths[key] ?? network.path,
        `${network.config[key]} overlaps ${taken}, an address of this host on another link; pick a subnet the host does not use`,
      );
    }
  }
}

/**
 * A container's `network` as its eth0 NIC, added to `devices`. It replaces the bridge and veth
 * op would give it, so it cannot come with them.
 */
export function attachNetwork(
  spec: LxcContainerSpec,
  path: string,
  bridge: string | undefined,
  devices: Devices,
  problems: ProblemSink,
): string | undefined {
  if (spec.network === undefined) return undefined;
  if (bridge !== undefined || spec.veth !== undefined) {
    const field =
      spec.bridge !== undefined ? "bridge" : spec.veth !== undefined ? "veth" : "network_type";
    problems.add(
      `${path}/network`,
      `a container attaches to a managed network or to a bridge, not both: remove "network" or ${path}/${field}`,
    );
    return undefined;
  }
  devices[nicDevice] = { type: "nic", network: spec.network, name: nicDevice };
  return spec.network;
}

/** The network a container names exists on the host or is declared present in the file. */
export function checkContainerNetwork(
  container: { name: string; project: string; path: string; network?: string },
  networks: readonly DesiredNetwork[],
  live: readonly LiveNetwork[],
  problems: ProblemSink,
): void {
  const name = container.network;
  if (name === undefined) return;
  const same = (network: { name: string; project: string }) =>
    network.name === name && network.project === container.project;
  const declared = networks.find(same);
  if (declared?.ensure === "absent") {
    problems.add(
      `${container.path}/network`,
      `network ${name} is marked "ensure": "absent" at ${declared.path}, but ${container.name} uses it`,
    );
    return;
  }
  if (declared === undefined && !live.some(same)) {
    problems.add(
      `${container.path}/network`,
      `network ${name} is neither an Incus managed network on this host (incus network list) nor declared under plugins.lxc.networks`,
    );
  }
}
