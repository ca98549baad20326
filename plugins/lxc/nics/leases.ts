/**
 * Static DHCP leases of NICs on Incus managed networks: the network must hand out addresses by
 * DHCP (stateful DHCPv6 for an IPv6 lease, which Incus requires too), and the address must be
 * in the network's subnet (the file's value when the file declares the network, else the
 * host's), not the network's own address, and a prefix given with it must be the subnet's. Incus would accept
 * a lease outside the subnet and its DHCP server would never hand it out.
 */
import { holds, subnetOf } from "../networks/check.js";
import type { DesiredNetwork, LiveNetwork } from "../networks/types.js";
import type { ProblemSink } from "../objects.js";
import type { DesiredContainer } from "../types.js";

export function checkLeases(
  container: DesiredContainer,
  networks: readonly DesiredNetwork[],
  live: readonly LiveNetwork[],
  problems: ProblemSink,
): void {
  for (const attached of container.networks ?? []) {
    const same = (network: { name: string; project: string }) =>
      network.name === attached.network && network.project === container.project;
    const config = { ...live.find(same)?.config, ...networks.find(same)?.config };
    for (const family of ["ipv4", "ipv6"] as const) {
      const value = attached[family];
      if (value === undefined) continue;
      const [address = "", prefix] = value.split("/");
      const at = `${attached.path}/${family}`;
      const key = `${family}.address`;
      const subnet = subnetOf(config[key]);
      if (subnet === undefined) {
        problems.add(
          at,
          `network ${attached.network} has no ${family === "ipv4" ? "IPv4" : "IPv6"} subnet op can read (${key} is ${config[key] ?? "not set"}), so it cannot lease ${address}; give the network a subnet (${family}_address) or drop the address`,
        );
        continue;
      }
      const dhcpOff =
        family === "ipv4"
          ? config["ipv4.dhcp"] === "false"
          : config["ipv6.dhcp.stateful"] !== "true";
      if (dhcpOff) {
        problems.add(
          at,
          family === "ipv4"
            ? `network ${attached.network} has DHCP off (ipv4.dhcp false), so it cannot lease ${address}; turn ipv4_dhcp on or drop the address`
            : `network ${attached.network} has no stateful DHCPv6 (ipv6.dhcp.stateful is not true), so it cannot lease ${address}; set config "ipv6.dhcp.stateful": "true" on it or drop the address`,
        );
        continue;
      }
      const shown = `${subnet.address}/${subnet.prefix}`;
      if (!holds(subnet, address)) {
        problems.add(at, `${address} is outside network ${attached.network}'s subnet ${shown}`);
        continue;
      }
      if (address === subnet.address) {
        problems.add(at, `${address} is network ${attached.network}'s own address (${shown})`);
        continue;
      }
      if (prefix !== undefined && Number(prefix) !== subnet.prefix) {
        problems.add(
          at,
          `the prefix /${prefix} is not network ${attached.network}'s /${subnet.prefix}; give the address alone (its DHCP server hands out the subnet's prefix)`,
        );
      }
    }
  }
}
