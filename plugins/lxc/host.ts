/**
 * What the lxc plugin reads and changes on the host itself, besides Incus, all through the
 * host layer (ctx.host, src/host/). Reads are sysfs and /proc files (a running container's
 * host veth, its bridge, its addresses; the Linux bridges), so a query starts no process;
 * OVSDB is read (ctx.host.ovs) only when an OVS bridge is involved. The few live fixes Incus
 * has no call for (rename a veth, re-enrol it) run through ctx.exec and ctx.host.ovs.
 */
import type { Runner } from "../../src/exec.js";
import type { Host } from "../../src/host/index.js";
import { type OvsHost, type OvsTopology, setOf, uuidOf } from "../../src/host/ovs.js";
import type { Sys } from "../../src/host/sys.js";
import type { OvsdbOperation } from "../../src/ovsdb.js";
import { defaultProject } from "./refs.js";
import type { BridgeKind } from "./types.js";

/**
 * The name Incus gives a container on the host (cgroup `lxc.payload.NAME`, its /proc reads):
 * the plain name in the default project, `PROJECT_NAME` in another (a container name holds no
 * `_`, so the two never meet).
 */
export function hostName(
  container: { project: string; name: string },
  /** The project an Incus client made for one project scopes the file's `default` to. */
  bound?: string,
): string {
  const project =
    container.project === defaultProject ? (bound ?? defaultProject) : container.project;
  return project === defaultProject ? container.name : `${project}_${container.name}`;
}

/** Everything apply needs to check a bridge and fix a link: Linux bridges, links, OVSDB. */
export interface HostNet {
  bridges: Record<string, BridgeKind>;
  ovs: OvsTopology;
}

export async function readHostNet(host: Host): Promise<HostNet> {
  const ovs = await readOvs(host.ovs);
  return { bridges: { ...linuxBridges(host.sys), ...ovsBridges(ovs) }, ovs };
}

export function linuxBridges(sys: Sys): Record<string, BridgeKind> {
  return Object.fromEntries(sys.linuxBridges().map((name) => [name, "linux" as const]));
}

export function ovsBridges(ovs: OvsTopology): Record<string, BridgeKind> {
  return Object.fromEntries(ovs.bridges.map((bridge) => [bridge, "ovs" as const]));
}

/** Bridges and port membership from OVSDB, in one request; nothing when OVS is not running. */
export async function readOvs(ovs: OvsHost): Promise<OvsTopology> {
  return (await ovs.topology()) ?? { bridges: [], portBridge: new Map<string, string>() };
}

/**
 * Puts a link's OVS port on `to` (or on no bridge) in one transaction, and takes the port of
 * its old name off every bridge, waiting for ovs-vswitchd as ovs-vsctl does. A port row that
 * exists moves with its uuid: a new row of the same name would collide in the name index.
 */
async function moveOvsPort(
  ovs: OvsHost,
  link: string,
  oldName: string,
  to: string | undefined,
  tag?: number,
): Promise<void> {
  await ovs.change({
    comment: `op apply (lxc plugin): ${link}`,
    details: [to === undefined ? `${link}: off Open vSwitch` : `${link}: onto ${to}`],
    read: { Port: ["_uuid", "name"], Bridge: ["name", "ports"] },
    operations: ({ Port: ports, Bridge: bridges }) => {
      const uuidNamed = (name: string) => {
        const row = ports.find((port) => port.name === name);
        return row === undefined ? undefined : uuidOf(row._uuid);
      };
      const holders = (uuid: string) =>
        bridges
          .filter((bridge) => setOf(bridge.ports).some((ref) => uuidOf(ref) === uuid))
          .map((bridge) => String(bridge.name));
      const operations: OvsdbOperation[] = [];
      const current = uuidNamed(link);
      const stale = oldName === link ? undefined : uuidNamed(oldName);
      for (const uuid of [current, stale]) {
        if (uuid === undefined) continue;
        for (const bridge of holders(uuid)) {
          if (uuid !== current || bridge !== to)
            operations.push(mutateBridgePorts(bridge, "delete", ["uuid", uuid]));
        }
      }
      if (to !== undefined && current === undefined) {
        operations.push(
          { op: "insert", table: "Interface", "uuid-name": "iface", row: { name: link } },
          {
            op: "insert",
            table: "Port",
            "uuid-name": "port",
            // A port re-added after a rename keeps the VLAN tag Incus gave the old one.
            row: {
              name: link,
              interfaces: ["named-uuid", "iface"],
              ...(tag === undefined ? {} : { tag }),
            },
          },
          mutateBridgePorts(to, "insert", ["named-uuid", "port"]),
        );
      } else if (to !== undefined && current !== undefined && !holders(current).includes(to)) {
        operations.push(mutateBridgePorts(to, "insert", ["uuid", current]));
      }
      return operations;
    },
  });
}

function mutateBridgePorts(
  bridge: string,
  how: "insert" | "delete",
  port: unknown,
): OvsdbOperation {
  return {
    op: "mutate",
    table: "Bridge",
    where: [["name", "==", bridge]],
    mutations: [["ports", how, ["set", [port]]]],
  };
}

/**
 * The ifindex, here, of the host end of a running container's `ifname`: sysfs inside the
 * container shows its own namespace, and `iflink` there is the peer's index.
 */
export function peerIndex(sys: Sys, name: string, ifname: string): number | undefined {
  const pid = sys.containerPid(name);
  const iflink =
    pid === undefined
      ? Number.NaN
      : Number(sys.procText(pid, `root/sys/class/net/${ifname}/iflink`).trim());
  return Number.isInteger(iflink) && iflink > 0 ? iflink : undefined;
}

/**
 * Whether a running container's own `ifname` is up (IFF_UP in its flags, read through sysfs
 * as the container sees it); undefined when that cannot be read.
 */
export function containerLinkUp(sys: Sys, name: string, ifname: string): boolean | undefined {
  const pid = sys.containerPid(name);
  if (pid === undefined) return undefined;
  const flags = Number.parseInt(sys.procText(pid, `root/sys/class/net/${ifname}/flags`).trim(), 16);
  return Number.isNaN(flags) ? undefined : (flags & 1) === 1;
}

/** A running container's global addresses, from /proc/PID/net of its namespace. */
export function containerAddresses(sys: Sys, name: string): string[] {
  const pid = sys.containerPid(name);
  if (pid === undefined) return [];
  return [
    ...ipv4Locals(sys.procText(pid, "net/fib_trie")),
    ...ipv6Globals(sys.procText(pid, "net/if_inet6")),
  ];
}

/** Local IPv4 addresses in a fib_trie dump, loopback left out. */
export function ipv4Locals(trie: string): string[] {
  const found = new Set<string>();
  const lines = trie.split("\n");
  for (let i = 1; i < lines.length; i++) {
    if (!/^\s*\/32 host LOCAL/.test(lines[i] ?? "")) continue;
    const address = /\|-- ([0-9.]+)/.exec(lines[i - 1] ?? "")?.[1];
    if (address !== undefined && !address.startsWith("127.")) found.add(address);
  }
  return [...found];
}

/** Global-scope IPv6 addresses from /proc/net/if_inet6 (scope 00), loopback left out. */
export function ipv6Globals(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 6 && cols[3] === "00" && cols[5] !== "lo")
    .map((cols) => (cols[0]?.match(/.{4}/g) ?? []).join(":").replace(/\b0{1,3}/g, ""));
}

/**
 * Renames a running container's host veth. The kernel only renames a link that is down, so:
 * down, rename, up (the caller re-enrols it: OVS knows ports by name).
 */
export async function renameLink(exec: Runner, from: string, to: string): Promise<void> {
  await exec.run("ip", ["link", "set", "dev", from, "down"]);
  await exec.run("ip", ["link", "set", "dev", from, "name", to]);
  await exec.run("ip", ["link", "set", "dev", to, "up"]);
}

/** Enrols a link in a bridge, leaving the one it was in (Linux or OVS) first. */
export async function enrol(
  { exec, ovs }: { exec: Runner; ovs: OvsHost },
  link: string,
  bridge: { name: string; kind: BridgeKind },
  previous: { link?: string; ovsBridge?: string },
  vlan?: number,
): Promise<void> {
  const oldName = previous.link ?? link;
  if (bridge.kind === "linux") {
    if (previous.ovsBridge !== undefined) await moveOvsPort(ovs, link, oldName, undefined);
    await exec.run("ip", ["link", "set", "dev", link, "master", bridge.name]);
  } else {
    await exec.run("ip", ["link", "set", "dev", link, "nomaster"]);
    await moveOvsPort(ovs, link, oldName, bridge.name, vlan);
  }
}
