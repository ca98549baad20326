/**
 * Reads the host in bulk, whatever the number of links: one `ip -batch` process dumps links
 * with their addresses and the IPv4 routes, one more the IPv6 routes, and one ovs-vsctl call
 * reads OVSDB; the three run in parallel.
 */
import type { Ctx } from "../../src/plugin.js";
import { canonicalIp, isLinkLocal6, parseCidr } from "./addr.js";
import { type OvsConfig, readOvs } from "./ovs.js";
import {
  type LinkType,
  type LiveLink,
  type LiveOvs,
  type LiveRoute,
  type NetLive,
  ownerMarker,
} from "./types.js";

export async function queryNetwork(ctx: Ctx, ovsConfig: OvsConfig): Promise<NetLive> {
  const [main, routes6, ovs] = await Promise.all([
    ctx.exec.run("ip", ["-j", "-d", "-batch", "-"], {
      input: "addr show\nroute show table main\n",
    }),
    // A kernel without IPv6 refuses this dump; that just means no IPv6 routes.
    ctx.exec.run("ip", ["-j", "-d", "-6", "route", "show", "table", "main"], { check: false }),
    readOvs(ctx.exec, ovsConfig),
  ]);
  const [addrDump, routes4] = splitJsonDocuments(main.stdout);
  const routes = {
    4: routes4 ?? [],
    6: (routes6.exitCode === 0 ? splitJsonDocuments(routes6.stdout)[0] : undefined) ?? [],
  };
  return parseLive(addrDump ?? [], routes, ovs);
}

/** `ip -j -batch` prints one JSON array per command, one per line (JSON strings hold no raw newline). */
export function splitJsonDocuments(text: string): unknown[][] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as unknown[]);
}

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  address?: string;
  ifalias?: string;
  master?: string;
  link?: string;
  link_netnsid?: number;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

interface IpRoute {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
}

/** Pure: turns the three dumps into the plugin's live view. */
export function parseLive(
  addrDump: unknown[],
  routeDumps: { 4: unknown[]; 6: unknown[] },
  ovs: LiveOvs,
): NetLive {
  const ovsBridges = new Set(ovs.available ? ovs.bridges.map((b) => b.name) : []);
  const ovsInternal = new Set(
    ovs.available
      ? ovs.bridges.flatMap((b) => b.ports.filter((p) => p.type === "internal").map((p) => p.name))
      : [],
  );
  const ovsOwned = new Set(
    ovs.available
      ? ovs.bridges.flatMap((b) => [
          ...(b.owned ? [b.name] : []),
          ...b.ports.filter((p) => p.owned).map((p) => p.name),
        ])
      : [],
  );

  const links = (addrDump as IpLink[]).map((raw): LiveLink => {
    const kind = raw.linkinfo?.info_kind ?? "";
    const name = raw.ifname;
    const type: LinkType | "other" = ovsBridges.has(name)
      ? "ovs-bridge"
      : ovsInternal.has(name)
        ? "ovs-interface"
        : typeOfKind(kind, raw.link_type);
    const alias = raw.ifalias;
    const addresses = raw.addr_info ?? [];
    const listOf = (family: string): string[] =>
      addresses
        .filter(
          (a) =>
            a.family === family &&
            a.local !== undefined &&
            !(family === "inet6" && isLinkLocal6(a.local)),
        )
        .map((a) => `${canonicalIp(a.local as string)}/${a.prefixlen}`);
    const owned =
      type === "ovs-bridge" || type === "ovs-interface"
        ? ovsOwned.has(name)
        : alias !== undefined && (alias === ownerMarker || alias.startsWith(`${ownerMarker} `));
    return {
      name,
      type,
      kind,
      state: raw.flags?.includes("UP") ? "up" : "down",
      mtu: raw.mtu ?? 0,
      mac: (raw.address ?? "").toLowerCase(),
      ...(alias === undefined ? {} : { alias }),
      owned,
      ipv4: listOf("inet"),
      ipv6: listOf("inet6"),
      ...(raw.master === undefined ? {} : { master: raw.master }),
      ...(kind === "veth" && raw.link !== undefined ? { peer: raw.link } : {}),
      ...(kind === "veth" && raw.link_netnsid !== undefined ? { peerElsewhere: true } : {}),
      ...(kind === "macvlan" && raw.link !== undefined ? { base: raw.link } : {}),
      ...(kind === "macvlan" ? { mode: raw.linkinfo?.info_data?.mode ?? "vepa" } : {}),
    };
  });

  const routes: LiveRoute[] = [];
  const uplinks = new Set<string>();
  const tagged = ([4, 6] as const).flatMap((family) =>
    (routeDumps[family] as IpRoute[]).map((raw) => ({ raw, family })),
  );
  for (const { raw, family } of tagged) {
    if (raw.dev === undefined || raw.dst === undefined || (raw.type ?? "unicast") !== "unicast")
      continue;
    if (raw.dst === "default") uplinks.add(raw.dev);
    const protocol = raw.protocol ?? "boot";
    if (protocol === "kernel" || protocol === "ra") continue;
    const cidr = raw.dst === "default" ? undefined : parseCidr(raw.dst);
    routes.push({
      to: cidr ? `${cidr.ip}/${cidr.prefix}` : "default",
      family,
      ...(raw.gateway === undefined ? {} : { via: canonicalIp(raw.gateway) }),
      dev: raw.dev,
      metric: raw.metric ?? (family === 6 ? 1024 : 0),
      protocol,
    });
  }
  return { links, ovs, routes, uplinks: [...uplinks].sort() };
}

function typeOfKind(kind: string, linkType: string | undefined): LinkType | "other" {
  switch (kind) {
    case "bridge":
      return "linux-bridge";
    case "veth":
    case "macvlan":
    case "dummy":
      return kind;
    case "":
      return linkType === "ether" ? "ethernet" : "other";
    default:
      return "other";
  }
}
