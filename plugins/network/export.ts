/**
 * `op export` for the network plugin: the live links, OVS bridges and static routes as a
 * network section, written so that prepare and diff find nothing to do on the same host.
 * Without `all`, only what op created (its ifalias marker, its OVS external_ids) and what that
 * needs to stay as it is (the peer of its veths, the internal ports of its OVS bridges).
 */
import type { Interface, NetworkSection, Route } from "../../src/generated/network.js";
import type { ExportedSection, FileView } from "../../src/plugin.js";
import { fileNetworkBridges } from "../lxc/bridges.js";
import {
  type LinkType,
  type LiveLink,
  type LiveOvsBridge,
  type LiveRoute,
  type NetLive,
  ovsTypes,
  ownerMarker,
} from "./types.js";

/** The link types a section can declare; `other` (lo, tun, vxlan...) is not op's. */
const exportable: ReadonlySet<string> = new Set<LinkType>([
  "linux-bridge",
  "veth",
  "macvlan",
  "dummy",
  "ethernet",
  "ovs-bridge",
  "ovs-interface",
]);

export function exportNetwork(
  live: NetLive,
  options: { all: boolean },
  _ctx?: unknown,
  file?: FileView,
): ExportedSection {
  const notes: string[] = [];
  // An Incus managed network's bridge is the lxc section's (the file may not declare it twice).
  const incusBridges = new Set(file === undefined ? [] : fileNetworkBridges(file));
  const ovsBridges = live.ovs.available ? live.ovs.bridges : [];
  const chosenBridges = ovsBridges.filter((bridge) => options.all || bridge.owned);
  const liveBy = new Map(live.links.map((link) => [link.name, link]));

  const chosen = new Set<string>();
  for (const link of live.links) {
    if (!exportable.has(link.type) || ovsTypes.has(link.type)) continue;
    if (!options.all && !link.owned) continue;
    if (incusBridges.has(link.name) || (link.master !== undefined && incusBridges.has(link.master)))
      continue;
    // A veth into a container (or another namespace) op did not make goes with whoever made
    // it: op could not make it again from the file, and Incus renames it at each start.
    if (!link.owned && link.type === "veth" && link.peerElsewhere) {
      notes.push(
        `veth ${link.name}: not op's, its peer is in another namespace (a container's?); left out`,
      );
      continue;
    }
    chosen.add(link.name);
  }
  // A veth's peer here follows the veth's state unless declared: declared, it keeps its own.
  for (const name of [...chosen]) {
    const peer = liveBy.get(name)?.peer;
    if (peer !== undefined && liveBy.get(peer)?.type === "veth") chosen.add(peer);
  }
  // The internal ports of an exported OVS bridge are interfaces of the file too. One whose
  // device vswitchd has not made is declared down, which op leaves to OVS as it is.
  const deviceless: Interface[] = [];
  for (const bridge of chosenBridges) {
    const internals = bridge.ports.filter((port) => port.type === "internal");
    for (const { name } of [bridge, ...internals]) {
      if (liveBy.has(name)) chosen.add(name);
      else deviceless.push({ name, type: name === bridge.name ? "ovs-bridge" : "ovs-interface" });
    }
  }

  // Each veth pair is created by one side: the first chosen one that op owns, else the first.
  const creatorOf = new Map<string, string>();
  for (const name of chosen) {
    const link = liveBy.get(name) as LiveLink;
    if (link.type !== "veth" || link.peer === undefined || creatorOf.has(name)) continue;
    const other = liveBy.get(link.peer);
    const creator = other?.owned === true && !link.owned ? other.name : name;
    creatorOf.set(link.name, creator);
    creatorOf.set(link.peer, creator);
  }

  const ovsBy = new Map(chosenBridges.map((bridge) => [bridge.name, bridge]));
  const interfaces: Interface[] = [];
  for (const link of live.links) {
    if (!chosen.has(link.name)) continue;
    interfaces.push(
      exportLink(link, { live, creatorOf, ovs: ovsBy.get(link.name), chosen, notes }),
    );
  }
  for (const iface of deviceless) {
    const bridge = ovsBy.get(iface.name);
    interfaces.push({ ...iface, state: "down", ...(bridge ? exportOvs(bridge, notes) : {}) });
  }
  // Its bridges' devices (tun on the netdev datapath) cannot be told from others without it.
  if (!live.ovs.available)
    notes.push(`Open vSwitch: ${live.ovs.reason}; OVS bridges and ports, if any, are left out`);

  const kept = new Set(interfaces.map((iface) => iface.name));
  const routes: Route[] = live.routes
    .filter((route) => kept.has(route.dev) && routeWanted(route, liveBy, options.all, notes))
    .map((route) => ({
      to: route.to,
      ...(route.via === undefined ? {} : { via: route.via }),
      dev: route.dev,
      metric: route.metric,
    }));

  const section: NetworkSection = {
    ...(interfaces.length === 0 ? {} : { interfaces }),
    ...(routes.length === 0 ? {} : { routes }),
  };
  return {
    section: interfaces.length === 0 && routes.length === 0 ? undefined : section,
    notes,
  };
}

interface LinkContext {
  live: NetLive;
  creatorOf: ReadonlyMap<string, string>;
  ovs: LiveOvsBridge | undefined;
  chosen: ReadonlySet<string>;
  notes: string[];
}

function exportLink(link: LiveLink, context: LinkContext): Interface {
  const { live, creatorOf, ovs, notes } = context;
  const isOvs = ovsTypes.has(link.type);
  const alias = userAlias(link, isOvs);
  const iface: Interface = {
    name: link.name,
    type: link.type as Interface["type"],
    state: link.state,
    // An OVS link's MTU is the OVSDB request (below), not netlink's.
    ...(isOvs ? {} : { mtu: link.mtu }),
    ...(alias === undefined ? {} : { alias }),
  };
  // A family a DHCP client configures (its routes say so) is the client's: written as such,
  // so that neither a renewed lease nor another host's is fought over.
  const dhcp = (family: 4 | 6) =>
    live.routes.some((r) => r.dev === link.name && r.family === family && r.protocol === "dhcp");
  if (dhcp(4)) iface.ipv4 = { dhcp: true };
  else if (link.ipv4.length > 0) iface.ipv4 = { addresses: [...link.ipv4] };
  if (dhcp(6)) iface.ipv6 = { dhcp: true };
  else if (link.ipv6.length > 0) iface.ipv6 = { addresses: [...link.ipv6] };
  // ovs-system is the kernel datapath of OVS's system bridges: their ports are in ovs.ports.
  if (
    link.master !== undefined &&
    link.master !== "ovs-system" &&
    !context.chosen.has(link.master)
  ) {
    notes.push(
      `${link.type} ${link.name}: a port of ${link.master}, which is not exported; its membership is not written`,
    );
  }

  if (link.type === "linux-bridge") {
    // On a bridge op owns, every member, so none is foreign (container veths included); on
    // another, only the links exported, so a container's veth renamed at its next start is no
    // missing port.
    const ports = live.links
      .filter((l) => l.master === link.name && (link.owned || context.chosen.has(l.name)))
      .map((l) => l.name);
    iface.bridge = { ports };
  }
  if (link.type === "veth") {
    if (link.peerElsewhere) {
      notes.push(
        `veth ${link.name}: its peer is in another network namespace, whose name ip does not tell; add "veth": {"peer", "netns"} to re-create it elsewhere`,
      );
    } else if (link.peer !== undefined && creatorOf.get(link.name) === link.name) {
      iface.veth = { peer: link.peer };
    }
  }
  if (link.type === "macvlan" && link.base !== undefined) {
    const mode = link.mode ?? "vepa";
    if (isMacvlanMode(mode)) iface.macvlan = { base: link.base, mode };
    else notes.push(`macvlan ${link.name}: mode ${mode} is not one op's format has`);
  }
  if (link.type === "ovs-bridge" && ovs !== undefined) Object.assign(iface, exportOvs(ovs, notes));
  if (link.type === "ovs-interface") {
    const port = live.ovs.available
      ? live.ovs.bridges.flatMap((b) => b.ports).find((p) => p.name === link.name)
      : undefined;
    if (port?.mtu !== undefined) iface.mtu = port.mtu;
  }
  return iface;
}

function exportOvs(bridge: LiveOvsBridge, notes: string[]): Partial<Interface> {
  let datapath: "netdev" | "system";
  if (bridge.datapath === "netdev" || bridge.datapath === "system") datapath = bridge.datapath;
  else {
    datapath = "system";
    notes.push(
      `ovs-bridge ${bridge.name}: datapath_type is "${bridge.datapath}" (Open vSwitch's default); exported as "system", which applying writes explicitly`,
    );
  }
  for (const port of bridge.ports) {
    if (port.type !== "" && port.type !== "internal" && port.type !== "system") {
      notes.push(
        `ovs port ${bridge.name}/${port.name}: interface type "${port.type}" (and its options) is not in op's format; exported as a plain port`,
      );
    }
    if (port.mac !== undefined && port.type === "internal") {
      notes.push(`ovs port ${bridge.name}/${port.name}: its requested MAC is left out`);
    }
  }
  if (bridge.mac !== undefined)
    notes.push(`ovs-bridge ${bridge.name}: other_config:hwaddr ${bridge.mac} is left out`);
  return {
    ...(bridge.mtu === undefined ? {} : { mtu: bridge.mtu }),
    ovs: {
      ports: bridge.ports.map((port) => ({
        name: port.name,
        ...(port.tag === undefined ? {} : { tag: port.tag }),
      })),
      datapath,
    },
  };
}

/** The alias the user wrote: op's own marker is added back by op on links it owns. */
function userAlias(link: LiveLink, isOvs: boolean): string | undefined {
  const alias = link.alias;
  if (alias === undefined) return undefined;
  if (!link.owned || isOvs) return alias;
  if (alias === ownerMarker) return undefined;
  return alias.slice(ownerMarker.length + 1);
}

function isMacvlanMode(mode: string): mode is "bridge" | "vepa" | "private" | "passthru" {
  return ["bridge", "vepa", "private", "passthru"].includes(mode);
}

/**
 * op adds its routes with `proto static`: those are exported; with `all`, the others on the
 * exported links too (`boot`, from `ip route add` by hand), but never a DHCP client's.
 */
function routeWanted(
  route: LiveRoute,
  liveBy: ReadonlyMap<string, LiveLink>,
  all: boolean,
  notes: string[],
): boolean {
  if (route.protocol === "static" && liveBy.get(route.dev)?.owned === true) return true;
  if (!all) return false;
  if (route.protocol === "static" || route.protocol === "boot") return true;
  notes.push(
    `route ${route.to} dev ${route.dev}: added by ${route.protocol}, not by hand; left out`,
  );
  return false;
}
