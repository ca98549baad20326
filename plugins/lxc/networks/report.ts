/** `op query --plugin lxc`: the managed networks, one row each. */
import type { LiveReport } from "../../../src/plugin.js";
import { usedByOf, usedByWords } from "../objects.js";
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
      network.usedBy.map((url) => usedByWords(usedByOf(url))).join(", ") || "-",
      network.owned ? "yes" : "no",
    ]),
  };
}
