/**
 * Reads the host in bulk, whatever the number of links: one `ip -batch` process dumps links
 * with their addresses and the routes of both families, while OVSDB is read over its socket.
 */
import type { Ctx } from "../../src/plugin.js";
import { canonicalIp, isLinkLocal6, parseCidr } from "./addr.js";
import { readOvs } from "./ovs.js";
import {
  type LinkType,
  type LiveLink,
  type LiveOvs,
  type LiveRoute,
  type NetLive,
  ownerMarker,
} from "./types.js";

export async function queryNetwork(ctx: Ctx): Promise<NetLive> {
  const [main, ovs] = await Promise.all([
    // `table all` is the one route dump that holds both families (with a table named, ip
    // shows IPv4 only), so a second process for IPv6 is not needed: each process start costs
    // the main thread a fork of the whole node process.
    ctx.exec.run("ip", ["-j", "-d", "-batch", "-"], {
      input: "addr show\nroute show table all type unicast\n",
    }),
    readOvs(ctx.host.ovs, ctx.exec.netns),
  ]);
  const [addrDump, routeDump] = splitJsonDocuments(main.stdout);
  return parseLive(addrDump ?? [], routesByFamily((routeDump ?? []) as IpRoute[]), ovs);
}

/** `ip -j -batch` prints one JSON array per command, one per line (JSON strings hold no raw newline). */
export function splitJsonDocuments(text: string): unknown[][] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as unknown[]);
}

/**
 * The main table's routes of a `route show table all` dump, by family. ip's JSON has no family
 * field: an IPv6 route has a ':' in its destination or gateway, or else (a default route with
 * no gateway) the `pref` that the kernel gives every IPv6 route and no IPv4 one.
 */
export function routesByFamily(dump: readonly IpRoute[]): { 4: IpRoute[]; 6: IpRoute[] } {
  const families: { 4: IpRoute[]; 6: IpRoute[] } = { 4: [], 6: [] };
  for (const route of dump) {
    if ((route.table ?? "main") !== "main") continue;
    const six =
      route.dst?.includes(":") || route.gateway?.includes(":") || route.pref !== undefined;
    families[six ? 6 : 4].push(route);
  }
  return families;
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

export interface IpRoute {
  type?: string;
  table?: string;
  pref?: string;
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
  const defaultRoutes: NetLive["defaultRoutes"] = [];
  const tagged = ([4, 6] as const).flatMap((family) =>
    (routeDumps[family] as IpRoute[]).map((raw) => ({ raw, family })),
  );
  for (const { raw, family } of tagged) {
    if (raw.dev === undefined || raw.dst === undefined || (raw.type ?? "unicast") !== "unicast")
      continue;
    if (raw.dst === "default")
      defaultRoutes.push({ dev: raw.dev, family, metric: raw.metric ?? (family === 6 ? 1024 : 0) });
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
  const uplinks = linksUnder(
    defaultRoutes.map((route) => route.dev),
    links,
    ovs,
  );
  return { links, ovs, routes, uplinks, defaultRoutes };
}

/** The given links and, transitively, the links they sit on: bridge ports, macvlan bases. */
export function linksUnder(
  tops: readonly string[],
  links: readonly LiveLink[],
  ovs: LiveOvs,
): string[] {
  const found = new Set(tops);
  const lowers = new Map<string, string[]>();
  const addLower = (upper: string, lower: string): void => {
    lowers.set(upper, [...(lowers.get(upper) ?? []), lower]);
  };
  for (const link of links) {
    if (link.master !== undefined) addLower(link.master, link.name);
    if (link.base !== undefined) addLower(link.name, link.base);
  }
  if (ovs.available) {
    for (const bridge of ovs.bridges)
      for (const port of bridge.ports) addLower(bridge.name, port.name);
    // An internal port carrying the route is as much the bridge's as the bridge's own port.
    for (const bridge of ovs.bridges)
      for (const port of bridge.ports)
        if (port.type === "internal") addLower(port.name, bridge.name);
  }
  const queue = [...found];
  for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
    for (const lower of lowers.get(name) ?? []) {
      if (found.has(lower)) continue;
      found.add(lower);
      queue.push(lower);
    }
  }
  return [...found].sort();
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
