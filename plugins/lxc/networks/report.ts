/** `op query --plugin lxc`: the managed networks, one row each. */
import type { LiveReport } from "../../../src/plugin.js";
import { userOf, usersWords } from "../objects.js";
import type { LiveNetwork } from "./types.js";

export function reportNetworks(networks: readonly LiveNetwork[]): LiveReport {
  return {
    title: "networks",
    columns: ["name", "project", "type", "ipv4", "ipv6", "nat", "dhcp", "used by", "op"],
    rows: networks.map((network) => [
      network.name,
      network.project,
      network.type,
      network.config["ipv4.address"] ?? "-",
      network.config["ipv6.address"] ?? "-",
      network.config["ipv4.nat"] ?? "-",
      network.config["ipv4.dhcp"] ?? "-",
      usersWords(network.usedBy.map(userOf)) || "-",
      network.managed ? "yes" : "no",
    ]),
  };
}
