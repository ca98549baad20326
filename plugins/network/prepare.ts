/**
 * Turns the validated `plugins.network` section (op's form or the op-dbus net form) into the
 * normalised desired state, checking what the schema cannot: references between links, bridge
 * loops, duplicate addresses, links that exist with another type, OVS reachability, and the
 * uplink guard. Changes nothing.
 */
import { OpError } from "../../src/errors.js";
import type { Address4, Interface, NetworkSection } from "../../src/generated/network.js";
import { ovsStartHint } from "../../src/host/ovs.js";
import { type Adoption, describeRef, type Problem, problemLine } from "../../src/plugin.js";
import { type ContainerVeth, looksLikeContainerVeth } from "../lxc/veths.js";
import { canonicalIp, familyOf, hasHostBits, parseCidr } from "./addr.js";
import { diffNetwork } from "./diff.js";
import { routeId } from "./refs.js";
import {
  type DesiredLink,
  type DesiredOvsBridge,
  type DesiredRoute,
  type LinkType,
  type NetDesired,
  type NetLive,
  type NetworkAction,
  type OvsChange,
  ovsTypes,
} from "./types.js";

/** The kernel keeps at most 255 bytes of ifalias; op's marker and a space come first. */
const maxAliasBytes = 200;

const typeAliases: Record<Interface["type"], LinkType> = {
  "linux-bridge": "linux-bridge",
  bridge: "linux-bridge",
  "ovs-bridge": "ovs-bridge",
  "ovs-interface": "ovs-interface",
  "ovs-port": "ovs-interface",
  veth: "veth",
  macvlan: "macvlan",
  dummy: "dummy",
  ethernet: "ethernet",
};

/**
 * What the file alone says, normalised: everything prepare checks without the host. It runs
 * while the host is being read (see `Plugin.prepare`); `resolveNetwork` then adds the checks
 * and fields that need the live links.
 */
export interface NetworkFromFile {
  section: NetworkSection;
  typeOf: ReadonlyMap<string, LinkType>;
  indexOf: ReadonlyMap<string, number>;
  absent: string[];
  members: ReadonlyMap<string, { name: string; tag?: number }[]>;
  /** The links to create or tune (the interfaces not marked absent), in file order. */
  links: DesiredLink[];
  routes: DesiredRoute[];
  /** Which link each address of the file is on (IP without prefix). */
  addressOwner: ReadonlyMap<string, string>;
  /** Where in the section each route is written, by route id. */
  routeWhere: ReadonlyMap<string, string>;
  ovs: DesiredOvsBridge[];
  entries: Record<string, Adoption>;
}

/** One thing wrong with the section: where in it (a JSON pointer suffix), what, what to do. */
interface NetworkProblem {
  where: string;
  message: string;
  hint: string;
}

/** Records a problem; the checks go on, so that a file's problems are all told at once. */
type Fail = (where: string, message: string, hint: string) => void;

function collector(): { problems: NetworkProblem[]; fail: Fail } {
  const problems: NetworkProblem[] = [];
  return { problems, fail: (where, message, hint) => problems.push({ where, message, hint }) };
}

/** "PATH/where: message (hint)", the form `op validate` prints each problem in. */
function problemLines(problems: readonly NetworkProblem[], path: string): string[] {
  return [
    ...new Set(problems.map(({ where, message, hint }) => `${path}${where}: ${message} (${hint})`)),
  ];
}

/** Throws one error telling every problem, if there is any. */
function refuse(problems: readonly NetworkProblem[]): void {
  const [first] = problems;
  if (first === undefined) return;
  if (problems.length === 1) {
    throw new OpError("invalid-state", `${sectionPath}${first.where}: ${first.message}`, {
      hint: first.hint,
    });
  }
  throw new OpError("invalid-state", `the network section has ${problems.length} problems`, {
    details: problemLines(problems, sectionPath),
    hint: "each line gives the JSON path of a problem and what to do; nothing was changed",
  });
}

/** The section's path in messages that have no file to name it by (the CLI checks first). */
const sectionPath = "/plugins/network";

export interface ResolveOptions {
  allowUplink: boolean;
  /** The container veths the file's lxc section declares (plugins/lxc/veths.ts). */
  guests?: readonly ContainerVeth[];
  /** `--adopt`: every entry adopts what it names, as if it said `adopt: true`. */
  adopt?: boolean;
}

/** The file's half, the host's half, and the uplink guard, as a run does them (for tests). */
export function prepareNetwork(
  section: NetworkSection,
  live: NetLive,
  options: ResolveOptions,
): NetDesired {
  const desired = resolveNetwork(normaliseNetwork(section), live, options);
  if (!options.allowUplink) guardUplinks(diffNetwork(desired, live), live);
  return desired;
}

/** The problems of the file's section that need no host (`op validate`), each with its path. */
export function checkNetwork(section: NetworkSection, path: string): string[] {
  return problemLines(readNetworkFile(section).problems, path);
}

/** checkNetwork's problems as the plugin contract's Problems (each told once). */
export function networkProblems(section: NetworkSection, path: string): Problem[] {
  const seen = new Set<string>();
  return readNetworkFile(section).problems.flatMap(({ where, message, hint }) => {
    const problem = { path: `${path}${where}`, message, hint };
    const line = problemLine(problem);
    if (seen.has(line)) return [];
    seen.add(line);
    return [problem];
  });
}

export function normaliseNetwork(section: NetworkSection): NetworkFromFile {
  const { file, problems } = readNetworkFile(section);
  refuse(problems);
  return file;
}

/**
 * The file's half, with every problem it has. Memoised by section: the CLI checks a file
 * (`Plugin.check`) before it prepares it, and a plan of 400 links should not read it twice.
 */
const readFiles = new WeakMap<
  NetworkSection,
  { file: NetworkFromFile; problems: NetworkProblem[] }
>();

function readNetworkFile(section: NetworkSection): {
  file: NetworkFromFile;
  problems: NetworkProblem[];
} {
  let read = readFiles.get(section);
  if (read === undefined) {
    const { problems, fail } = collector();
    read = { file: normalise(section, fail), problems };
    readFiles.set(section, read);
  }
  return read;
}

function normalise(section: NetworkSection, fail: Fail): NetworkFromFile {
  const interfaces = section.interfaces ?? [];

  // Names and types first: everything else refers to them.
  const typeOf = new Map<string, LinkType>();
  const indexOf = new Map<string, number>();
  const absent: string[] = [];
  const entries: Record<string, Adoption> = {};
  interfaces.forEach((iface, i) => {
    if (indexOf.has(iface.name)) {
      fail(
        at(i),
        `"${iface.name}" is listed twice (also at interfaces/${indexOf.get(iface.name)})`,
        "list each link once",
      );
      return;
    }
    indexOf.set(iface.name, i);
    typeOf.set(iface.name, typeAliases[iface.type]);
    if (iface.ensure === "absent") absent.push(iface.name);
    // A NIC is never op's (op neither creates nor deletes one): naming it is leave to tune it.
    if (typeAliases[iface.type] !== "ethernet")
      entries[iface.name] = { path: `${sectionPath}${at(i)}`, allowed: iface.adopt === true };
  });

  // Bridge membership, from both spellings: bridge.ports / ovs.ports / ports, and controller.
  const members = new Map<string, { name: string; tag?: number }[]>();
  interfaces.forEach((iface, i) => {
    const type = typeAliases[iface.type];
    const isBridge = type === "linux-bridge" || type === "ovs-bridge";
    if (!isBridge && iface.exclusive_ports !== undefined) {
      fail(
        `${at(i)}/exclusive_ports`,
        `"${iface.name}" is a ${type}; only bridges have exclusive_ports`,
        "remove it, or move it to the bridge",
      );
    }
    if (!isBridge && (iface.ports || iface.bridge || iface.ovs)) {
      fail(
        at(i),
        `"${iface.name}" is a ${type}; only bridges have ports`,
        "move the ports to the bridge they belong to",
      );
    }
    if (type === "linux-bridge" && iface.ovs) {
      fail(
        at(i),
        `"${iface.name}" is a Linux bridge but has OVS settings (ovs)`,
        'use "bridge": { "ports": [...] }',
      );
    }
    if (type === "ovs-bridge" && iface.bridge) {
      fail(
        at(i),
        `"${iface.name}" is an OVS bridge but has Linux bridge settings`,
        'use "ovs": { "ports": [...] }',
      );
    }
    if (!isBridge) return;
    const list = [
      ...(iface.bridge?.ports ?? []).map((name) => ({ name })),
      ...(iface.ovs?.ports ?? []),
      ...(iface.ports ?? []).map((name) => ({ name })),
    ];
    members.set(iface.name, list);
  });
  interfaces.forEach((iface, i) => {
    if (iface.controller === undefined) return;
    const list = members.get(iface.controller);
    if (list === undefined) {
      fail(
        at(i),
        `controller "${iface.controller}" of "${iface.name}" is not a bridge in this file`,
        "declare the bridge too",
      );
    }
    if (!list?.some((p) => p.name === iface.name)) list?.push({ name: iface.name });
  });

  const bridgeOf = new Map<string, string>();
  for (const [bridge, ports] of members) {
    const i = indexOf.get(bridge) ?? 0;
    for (const port of ports) {
      if (port.name === bridge) {
        fail(at(i), `bridge "${bridge}" lists itself as a port`, "remove it from its own ports");
      }
      const other = bridgeOf.get(port.name);
      if (other !== undefined) {
        fail(
          at(i),
          `"${port.name}" is a port of both "${other}" and "${bridge}"`,
          "a link can be in one bridge only",
        );
      }
      bridgeOf.set(port.name, bridge);
      if (absent.includes(port.name)) {
        fail(
          at(i),
          `port "${port.name}" of "${bridge}" is marked ensure: absent`,
          "remove it from the ports too",
        );
      }
    }
  }
  findBridgeLoop(members, (loop) =>
    fail(
      at(indexOf.get(loop[0] as string) ?? 0),
      `bridges form a loop: ${loop.join(" → ")}`,
      "a bridge cannot be (even indirectly) a port of itself",
    ),
  );

  // Per link: its fields and addresses.
  const links: DesiredLink[] = [];
  const routes: { route: DesiredRoute; where: string }[] = [];
  const addressOwner = new Map<string, string>();
  // For each veth name, the first declared veth that names it as its peer (file order).
  const declaredAsPeerBy = new Map<string, string>();
  interfaces.forEach((iface) => {
    if (iface.type !== "veth" || !iface.veth || iface.veth.netns !== undefined) return;
    if (iface.veth.peer === iface.name || declaredAsPeerBy.has(iface.veth.peer)) return;
    declaredAsPeerBy.set(iface.veth.peer, iface.name);
  });
  interfaces.forEach((iface, i) => {
    const type = typeAliases[iface.type];
    if (type === "ethernet" && iface.ensure === "absent") {
      fail(
        at(i),
        `"${iface.name}" is an ethernet NIC; op never deletes NICs`,
        "remove the entry, or set state: down",
      );
    }
    if (iface.ensure === "absent") return;
    if (iface.veth && type !== "veth")
      fail(at(i), `"${iface.name}" is a ${type} but has veth settings`, "remove veth");
    if (iface.macvlan && type !== "macvlan")
      fail(at(i), `"${iface.name}" is a ${type} but has macvlan settings`, "remove macvlan");
    if (iface.alias !== undefined && Buffer.byteLength(iface.alias) > maxAliasBytes) {
      fail(
        `${at(i)}/alias`,
        `the alias of "${iface.name}" is ${Buffer.byteLength(iface.alias)} bytes in UTF-8; at most ${maxAliasBytes} fit`,
        "shorten it",
      );
    }

    const mtu = iface.mtu ?? mtuFromProperties(iface, i, fail);
    const link: DesiredLink = {
      name: iface.name,
      type,
      ...(iface.state !== undefined
        ? { state: iface.state }
        : type === "ethernet"
          ? {}
          : { state: "up" as const }),
      ...(mtu === undefined ? {} : { mtu }),
      ...(iface.mac === undefined ? {} : { mac: iface.mac.toLowerCase() }),
      ...(iface.alias === undefined ? {} : { alias: iface.alias }),
    };
    for (const family of [4, 6] as const) {
      const addresses = addressesOf(iface, family, i, fail);
      if (addresses !== undefined) link[family === 4 ? "ipv4" : "ipv6"] = addresses;
      for (const address of addresses ?? []) {
        const ip = address.split("/")[0] as string;
        const owner = addressOwner.get(ip);
        if (owner !== undefined) {
          fail(
            at(i),
            `address ${ip} is on both "${owner}" and "${iface.name}"`,
            "an address belongs on one link",
          );
        }
        addressOwner.set(ip, iface.name);
      }
      const gateway = (family === 4 ? iface.ipv4 : iface.ipv6)?.gateway;
      const where = `${at(i)}/ipv${family}/gateway`;
      const route =
        gateway === undefined
          ? undefined
          : checkRoute({ to: "default", via: gateway, dev: iface.name }, where, fail);
      if (route !== undefined) routes.push({ route, where });
    }
    if ((link.ipv6?.length ?? 0) > 0 && mtu !== undefined && mtu < 1280) {
      fail(
        at(i),
        `MTU ${mtu} of "${iface.name}" is below 1280, the IPv6 minimum, and it has IPv6 addresses`,
        "raise the MTU to 1280 or more",
      );
    }
    const bridge = bridgeOf.get(iface.name);
    if (!ovsTypes.has(type) && (bridge === undefined || typeOf.get(bridge) === "linux-bridge")) {
      link.master = bridge ?? null;
    }
    if (type === "veth") {
      const createdBy = declaredAsPeerBy.get(iface.name);
      if (iface.veth) {
        if (iface.veth.peer === iface.name)
          fail(
            at(i),
            `veth "${iface.name}" names itself as its peer`,
            "give the peer another name",
          );
        const peerType = typeOf.get(iface.veth.peer);
        if (peerType !== undefined && peerType !== "veth") {
          fail(
            at(i),
            `the peer "${iface.veth.peer}" of veth "${iface.name}" is declared as a ${peerType}`,
            "use another peer name",
          );
        }
        link.veth = {
          peer: iface.veth.peer,
          ...(iface.veth.netns === undefined ? {} : { netns: iface.veth.netns }),
        };
      }
      // Of two veths declaring each other, the first in name order creates the pair.
      if (createdBy !== undefined && (!iface.veth || createdBy < iface.name)) {
        link.createdBy = createdBy;
        delete link.veth;
      }
    }
    if (type === "macvlan" && iface.macvlan) {
      link.macvlan = { base: iface.macvlan.base, mode: iface.macvlan.mode ?? "bridge" };
    }
    if (type === "linux-bridge" && iface.exclusive_ports === false) link.exclusivePorts = false;
    links.push(link);
  });

  (section.routes ?? []).forEach((route, i) => {
    const where = `/routes/${i}`;
    const checked = checkRoute(route, where, fail);
    if (checked !== undefined) routes.push({ route: checked, where });
  });
  const routeWhere = new Map<string, string>();
  for (const { route, where } of routes) {
    const id = routeId(route);
    if (routeWhere.has(id))
      fail(
        where,
        `the route to ${route.to} on "${route.dev}" is listed twice`,
        "list each route once",
      );
    else routeWhere.set(id, where);
  }

  return {
    section,
    typeOf,
    indexOf,
    absent,
    members,
    links,
    routes: routes.map(({ route }) => route),
    addressOwner,
    routeWhere,
    ovs: ovsBridges(interfaces, members, typeOf, links, fail),
    entries,
  };
}

/**
 * The desired state of `file` on this host: the checks that need the live links (ports and
 * bases that must exist, names taken by other links, addresses already elsewhere, OVS being
 * there), the fields that depend on them, and the uplink guard.
 */
export function resolveNetwork(
  file: NetworkFromFile,
  live: NetLive,
  options: ResolveOptions,
): NetDesired {
  const { typeOf, indexOf, absent, members, addressOwner } = file;
  const guests = options.guests ?? [];
  const guestVeths = new Set(guests.map((guest) => guest.veth));
  const guestsOf = (bridge: string): string[] =>
    guests.filter((guest) => guest.bridge === bridge).map((guest) => guest.veth);
  const interfaces = file.section.interfaces ?? [];
  const liveBy = new Map(live.links.map((link) => [link.name, link]));
  const { problems, fail } = collector();
  const present = (name: string): boolean => typeOf.has(name) && !absent.includes(name);

  const pending: NetDesired["pending"] = [];
  for (const [bridge, ports] of members) {
    const i = indexOf.get(bridge) ?? 0;
    const bridgeType = typeOf.get(bridge) as LinkType;
    for (const port of ports) {
      const guest = guests.find((g) => g.veth === port.name && g.bridge !== bridge);
      if (guest !== undefined) {
        fail(
          at(i),
          `port "${port.name}" of bridge "${bridge}" is the veth of a container that the lxc section puts on "${guest.bridge}"`,
          "name the same bridge in both sections",
        );
      }
      const portType = typeOf.get(port.name) ?? liveBy.get(port.name)?.type;
      if (portType === "ovs-interface" && bridgeType !== "ovs-bridge") {
        fail(
          at(i),
          `"${port.name}" is an OVS internal port; it cannot be a port of Linux bridge "${bridge}"`,
          "list it in an ovs-bridge",
        );
      }
      if (!present(port.name) && !liveBy.has(port.name)) {
        if (looksLikeContainerVeth(port.name) || guestVeths.has(port.name)) {
          pending.push({ bridge, port: port.name });
          continue;
        }
        fail(
          at(i),
          `port "${port.name}" of bridge "${bridge}" names a link that does not exist and is not declared`,
          `declare "${port.name}" in interfaces, create it first, or fix the name (a container veth is named vi<id>, vi<id>n<k>, or as the lxc section's "veth" or "host_name" says)`,
        );
      }
    }
  }

  // Per link: what live says about it. Links are copied: the file's form serves every host.
  const links = file.links.map((link) => ({ ...link }));
  const linkNamed = new Map(links.map((link) => [link.name, link]));
  interfaces.forEach((iface, i) => {
    if (iface.ensure === "absent") return;
    const type = typeAliases[iface.type];
    const cur = liveBy.get(iface.name);
    const link = linkNamed.get(iface.name) as DesiredLink;
    if (type === "ethernet" && cur === undefined) {
      fail(
        at(i),
        `ethernet "${iface.name}" does not exist on this host`,
        "op never creates NICs; check the name with `ip link`",
      );
    }
    // "ethernet" means any existing link op only tunes; other types must match what exists.
    if (cur?.type === "other" && !cur.owned && type !== "ethernet") {
      // The file has no words for it: adopting it would lose what makes it what it is.
      fail(
        at(i),
        `"${iface.name}" exists as a ${cur.kind || "device"} link, a type op does not manage, so op cannot adopt or replace it`,
        "name another link, declare it as type ethernet to only tune its state, mtu and addresses, or delete it by hand",
      );
    } else if (cur && cur.type !== type && !cur.owned && type !== "ethernet") {
      fail(
        at(i),
        `"${iface.name}" exists as a ${cur.type} (not a ${type}) and op did not create it, so it will not replace it`,
        "rename the entry, or delete the existing link by hand",
      );
    }
    if (type === "linux-bridge") {
      link.ports = (members.get(iface.name) ?? [])
        .map((p) => p.name)
        .filter((p) => present(p) || liveBy.has(p));
      const guestPorts = guestsOf(iface.name);
      if (guestPorts.length > 0) link.guestPorts = guestPorts;
    }
    if (type === "veth") {
      if (iface.veth) {
        const livePeer = liveBy.get(iface.veth.peer);
        if (
          iface.veth.netns === undefined &&
          livePeer &&
          livePeer.peer !== iface.name &&
          !livePeer.owned &&
          cur?.owned !== true
        ) {
          fail(
            at(i),
            `the peer name "${iface.veth.peer}" of veth "${iface.name}" is taken by another link`,
            "use another peer name",
          );
        }
      }
      if (link.createdBy === undefined && !iface.veth && cur === undefined) {
        fail(
          at(i),
          `veth "${iface.name}" does not exist and has no veth.peer to create it with`,
          'add "veth": { "peer": "<name>" }',
        );
      }
    }
    if (type === "macvlan") {
      if (!iface.macvlan && cur === undefined) {
        fail(
          at(i),
          `macvlan "${iface.name}" does not exist and has no macvlan.base`,
          'add "macvlan": { "base": "<link>" }',
        );
      }
      const base = iface.macvlan?.base;
      if (base !== undefined && (base === iface.name || (!present(base) && !liveBy.has(base)))) {
        fail(
          at(i),
          `the base "${base}" of macvlan "${iface.name}" does not exist`,
          "create the base link first or fix its name",
        );
      }
    }
  });

  // An address already on a link the file does not describe would be a second copy.
  for (const cur of live.links) {
    if (typeOf.has(cur.name) || cur.owned) continue;
    for (const address of [...cur.ipv4, ...cur.ipv6]) {
      const ip = address.split("/")[0] as string;
      const owner = addressOwner.get(ip);
      if (owner !== undefined) {
        fail(
          at(indexOf.get(owner) ?? 0),
          `address ${ip} of "${owner}" is already on "${cur.name}"`,
          "an address belongs on one link",
        );
      }
    }
  }

  // op rewrites only routes it added (proto static): another's route of the same destination
  // and link (the host's default route, say) is never changed in place.
  const liveRoutes = new Map(live.routes.map((route) => [routeId(route), route]));
  for (const route of file.routes) {
    const cur = liveRoutes.get(routeId(route));
    if (cur === undefined || cur.protocol === "static") continue;
    if (cur.via === route.via && cur.metric === route.metric) continue;
    fail(
      file.routeWhere.get(routeId(route)) ?? "/routes",
      `the route to ${route.to} on "${route.dev}" exists (via ${cur.via ?? "-"}, metric ${cur.metric}, proto ${cur.protocol}) and op did not add it, so it will not rewrite it`,
      "give the route the host has, or delete the host's route by hand first",
    );
  }

  (file.section.routes ?? []).forEach((route, i) => {
    const linkOwned = liveBy.get(route.dev)?.owned === true && !absent.includes(route.dev);
    if (!present(route.dev) && !linkOwned) {
      fail(
        `/routes/${i}`,
        `route to ${route.to} uses "${route.dev}", which is neither in this file nor created by op`,
        "op only routes over links it manages",
      );
    }
  });
  refuse(problems);

  const wantsOvs = interfaces.some((iface) => ovsTypes.has(typeAliases[iface.type]));
  if (wantsOvs && !live.ovs.available) {
    const names = interfaces
      .filter((iface) => ovsTypes.has(typeAliases[iface.type]))
      .map((iface) => iface.name);
    throw new OpError(
      "daemon-unavailable",
      `Open vSwitch is not available (${live.ovs.reason}), and the file has OVS links: ${names.join(", ")}`,
      {
        hint: ovsStartHint,
      },
    );
  }

  const desired: NetDesired = {
    links,
    absent,
    prune: file.section.prune === true,
    ovs: file.ovs.map((bridge) => ({ ...bridge, guestPorts: guestsOf(bridge.name) })),
    routes: file.routes,
    pending,
    entries:
      options.adopt === true
        ? Object.fromEntries(
            Object.entries(file.entries).map(([name, entry]) => [
              name,
              { ...entry, allowed: true },
            ]),
          )
        : file.entries,
  };
  return desired;
}

function at(i: number): string {
  return `/interfaces/${i}`;
}

function mtuFromProperties(iface: Interface, i: number, fail: Fail): number | undefined {
  const value = iface.properties?.mtu;
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 68 || value > 65535) {
    fail(
      `${at(i)}/properties/mtu`,
      `invalid MTU ${JSON.stringify(value)} for "${iface.name}"`,
      "an MTU is a whole number from 68 to 65535",
    );
    return undefined;
  }
  return value;
}

/** undefined: not given; null: a DHCP client owns them (op leaves them alone). */
function addressesOf(
  iface: Interface,
  family: 4 | 6,
  i: number,
  fail: Fail,
): string[] | null | undefined {
  const section = family === 4 ? iface.ipv4 : iface.ipv6;
  if (section === undefined) return undefined;
  if (section.dhcp === true) return null;
  if (section.enabled === false) return [];
  if (section.addresses && section.address) {
    fail(
      `${at(i)}/ipv${family}`,
      `give "addresses" or the op-dbus "address", not both`,
      "keep one list",
    );
  }
  const key = section.addresses ? "addresses" : "address";
  const list: Address4[] = section.addresses ?? section.address ?? [];
  const seen = new Set<string>();
  return list.flatMap((entry, j) => {
    const text = typeof entry === "string" ? entry : `${entry.ip}/${entry.prefix}`;
    const cidr = parseCidr(text);
    if (!cidr || cidr.family !== family || (typeof entry === "string" && !entry.includes("/"))) {
      fail(
        `${at(i)}/ipv${family}/${key}/${j}`,
        `invalid IPv${family} CIDR "${text}" on "${iface.name}"`,
        family === 4
          ? "write it as a.b.c.d/prefix with a prefix from 0 to 32"
          : "write it as an IPv6 address/prefix with a prefix from 0 to 128",
      );
      return [];
    }
    if (seen.has(cidr.ip)) {
      fail(
        `${at(i)}/ipv${family}/${key}/${j}`,
        `address ${cidr.ip} is listed twice on "${iface.name}"`,
        "list it once",
      );
      return [];
    }
    seen.add(cidr.ip);
    return [`${cidr.ip}/${cidr.prefix}`];
  });
}

function checkRoute(
  route: { to: string; via?: string; dev: string; metric?: number },
  where: string,
  fail: Fail,
): DesiredRoute | undefined {
  let family: 4 | 6;
  let to: string;
  if (route.to === "default") {
    const viaFamily = route.via === undefined ? 4 : familyOf(route.via);
    if (viaFamily === undefined) {
      fail(where, `invalid gateway address "${route.via}"`, "give an IPv4 or IPv6 address");
      return undefined;
    }
    family = viaFamily;
    to = "default";
  } else {
    const cidr = parseCidr(route.to);
    if (!cidr || !route.to.includes("/")) {
      fail(
        where,
        `invalid CIDR "${route.to}" in a route`,
        'write it as address/prefix, or "default"',
      );
      return undefined;
    }
    if (hasHostBits(cidr.ip, cidr.prefix)) {
      fail(
        where,
        `invalid CIDR "${route.to}": bits are set after the /${cidr.prefix} prefix`,
        "use the network address, e.g. 198.18.9.0/24",
      );
      return undefined;
    }
    family = cidr.family;
    to = `${cidr.ip}/${cidr.prefix}`;
  }
  if (route.via !== undefined && familyOf(route.via) !== family) {
    fail(
      where,
      `gateway "${route.via}" is not an IPv${family} address like ${route.to}`,
      "use a gateway of the same family",
    );
    return undefined;
  }
  return {
    to,
    family,
    ...(route.via === undefined ? {} : { via: canonicalIp(route.via) }),
    dev: route.dev,
    metric: route.metric ?? (family === 6 ? 1024 : 0),
  };
}

/** Calls `found` with the first cycle of bridges being (indirectly) ports of each other. */
function findBridgeLoop(
  members: ReadonlyMap<string, { name: string }[]>,
  found: (loop: string[]) => void,
): void {
  const state = new Map<string, "visiting" | "done">();
  const visit = (bridge: string, path: string[]): void => {
    if (state.get(bridge) === "done") return;
    if (state.get(bridge) === "visiting") {
      found([...path.slice(path.indexOf(bridge)), bridge]);
      return;
    }
    state.set(bridge, "visiting");
    for (const port of members.get(bridge) ?? []) {
      // A bridge that lists itself is told as such, not as a loop as well.
      if (members.has(port.name) && port.name !== bridge) visit(port.name, [...path, bridge]);
    }
    state.set(bridge, "done");
  };
  for (const bridge of [...members.keys()].sort()) visit(bridge, []);
}

function ovsBridges(
  interfaces: readonly Interface[],
  members: ReadonlyMap<string, { name: string; tag?: number }[]>,
  typeOf: ReadonlyMap<string, LinkType>,
  links: readonly DesiredLink[],
  fail: Fail,
): DesiredOvsBridge[] {
  const linkBy = new Map(links.map((link) => [link.name, link]));
  const internals = new Set<string>();
  const bridges = interfaces
    .filter((iface) => typeAliases[iface.type] === "ovs-bridge" && iface.ensure !== "absent")
    .map((iface): DesiredOvsBridge => {
      const link = linkBy.get(iface.name);
      return {
        name: iface.name,
        datapath: iface.ovs?.datapath ?? "netdev",
        exclusivePorts: iface.exclusive_ports !== false,
        guestPorts: [],
        ...(link?.mtu === undefined ? {} : { mtu: link.mtu }),
        ...(link?.mac === undefined ? {} : { mac: link.mac }),
        ports: (members.get(iface.name) ?? []).map((port) => {
          const internal = typeOf.get(port.name) === "ovs-interface";
          const portLink = linkBy.get(port.name);
          if (internal) internals.add(port.name);
          return {
            name: port.name,
            ...(port.tag === undefined ? {} : { tag: port.tag }),
            internal,
            ...(internal && portLink?.mtu !== undefined ? { mtu: portLink.mtu } : {}),
            ...(internal && portLink?.mac !== undefined ? { mac: portLink.mac } : {}),
          };
        }),
      };
    });
  interfaces.forEach((iface, i) => {
    if (
      typeAliases[iface.type] === "ovs-interface" &&
      iface.ensure !== "absent" &&
      !internals.has(iface.name)
    ) {
      fail(
        at(i),
        `OVS internal port "${iface.name}" is not a port of any ovs-bridge`,
        'list it in an ovs-bridge\'s "ovs": { "ports": [...] } (or give "controller")',
      );
    }
  });
  return bridges;
}

/**
 * Refuses a plan that could cut the host off: one that deletes, takes down, re-addresses,
 * enslaves or takes out of its bridge a link carrying the default route (or a link under it,
 * NetLive.uplinks), removes it from Open vSwitch, or adds, changes or deletes a default route
 * that the host's default route would give way to.
 */
export function guardUplinks(
  actions: readonly NetworkAction[],
  host: Pick<NetLive, "uplinks" | "defaultRoutes">,
): void {
  const problems = actions.flatMap((action) => uplinkProblems(action, host));
  if (problems.length > 0) {
    throw new OpError(
      "invalid-state",
      `refusing a plan that touches the link carrying the host's default route (${host.uplinks.join(", ") || "none"}): it would ${problems.join("; ")}`,
      {
        details: problems,
        hint: uplinkHint,
      },
    );
  }
}

const uplinkHint =
  "this could cut the host off the network; check the file, and if it is what you mean, run again with --allow-uplink";

/** guardUplinks' problems, one per thing the plan would do to an uplink (the plugin's guard). */
export function uplinkGuardProblems(
  actions: readonly NetworkAction[],
  host: Pick<NetLive, "uplinks" | "defaultRoutes">,
): Problem[] {
  const uplinks = host.uplinks.join(", ") || "none";
  return actions.flatMap((action) =>
    uplinkProblems(action, host).map((what) => ({
      path: describeRef(action),
      message: `it touches the link carrying the host's default route (${uplinks}): it would ${what}`,
      hint: uplinkHint,
    })),
  );
}

/** What one action would do to the host's uplinks, in words; empty when nothing. */
function uplinkProblems(
  action: NetworkAction,
  host: Pick<NetLive, "uplinks" | "defaultRoutes">,
): string[] {
  const isUplink = (name: unknown): boolean =>
    typeof name === "string" && host.uplinks.includes(name);
  if (action.resource === "ovs-db") {
    return action.kind === "modify" ? ovsUplinkProblems(action.changes, isUplink) : [];
  }
  if (action.resource === "route") return defaultRouteProblems(action, host.defaultRoutes);
  const problems: string[] = [];
  if (action.kind === "create") {
    for (const port of action.after.enrol.filter(isUplink))
      problems.push(`enrol ${port} in bridge ${action.id}`);
    return problems;
  }
  if (action.kind === "delete") return isUplink(action.id) ? [`delete ${action.id}`] : [];
  for (const change of action.changes) {
    // A bridge taking an uplink in, or letting one go, moves the host's traffic.
    if (change.path === "ports" && isUplink(change.after))
      problems.push(`enrol ${String(change.after)} in bridge ${action.id}`);
    if (change.path === "ports" && isUplink(change.before))
      problems.push(`take ${String(change.before)} out of bridge ${action.id}`);
    if (change.path === "peer.state" && change.after === "down") {
      const peer = action.after.veth?.peer;
      if (isUplink(peer)) problems.push(`take ${String(peer)} down`);
    }
    if (!isUplink(action.id)) continue;
    if (change.path === "state" && change.after === "down") problems.push(`take ${action.id} down`);
    if (change.path === "ipv4" || change.path === "ipv6") {
      problems.push(
        `${change.after === undefined ? "remove" : "add"} address ${String(change.after ?? change.before)} on ${action.id}`,
      );
    }
    if (change.path === "master") {
      problems.push(
        change.after === null
          ? `take ${action.id} out of bridge ${String(change.before)}`
          : `enrol ${action.id} in bridge ${String(change.after)}`,
      );
    }
  }
  return problems;
}

/** An `ovs-db` change that removes, moves or enrols an uplink (port or bridge). */
function ovsUplinkProblems(
  changes: readonly OvsChange[],
  isUplink: (name: unknown) => boolean,
): string[] {
  const problems: string[] = [];
  for (const change of changes) {
    if (change.op === "set") continue;
    const { bridge } = change;
    if (change.table === "bridge") {
      if (change.op === "add") continue;
      if (isUplink(bridge)) problems.push(`delete ${bridge} from Open vSwitch`);
      for (const name of change.before.ports.filter(isUplink))
        problems.push(`delete ${name} from Open vSwitch (with bridge ${bridge})`);
      continue;
    }
    const { port } = change;
    if (!isUplink(port)) continue;
    if (change.op === "remove") problems.push(`delete ${port} from Open vSwitch`);
    else if (change.after.from !== undefined)
      problems.push(`move ${port} from OVS bridge ${change.after.from} to ${bridge}`);
    else problems.push(`enrol ${port} in OVS bridge ${bridge}`);
  }
  return problems;
}

/**
 * A default route op adds with the same or a lower metric than one the host has (of the same
 * family) would replace or shadow the host's; changing or deleting a default route is the
 * same kind of change.
 */
function defaultRouteProblems(
  action: Extract<NetworkAction, { resource: "route" }>,
  defaultRoutes: NetLive["defaultRoutes"],
): string[] {
  const route = action.kind === "delete" ? action.before : action.after;
  if (route.to !== "default") return [];
  if (action.kind === "delete") return [`delete the default route on ${route.dev}`];
  if (action.kind === "modify") return [`replace the default route on ${route.dev}`];
  return defaultRoutes
    .filter((host) => host.family === route.family && route.metric <= host.metric)
    .map(
      (host) =>
        `add a default route on ${route.dev} with metric ${route.metric}, which would replace or shadow the host's default route on ${host.dev} (metric ${host.metric})`,
    );
}
