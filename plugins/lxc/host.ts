/**
 * What the lxc plugin reads and changes on the host itself, besides Incus. Reads are sysfs and
 * /proc files (a running container's host veth, its bridge, its addresses; the Linux bridges),
 * so a query starts no process; OVSDB is read (one request on its socket, src/ovsdb.ts) only
 * when an OVS bridge is involved. The few live fixes Incus has no call for (rename a veth,
 * re-enrol it) run through ctx.exec and OVSDB.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Runner } from "../../src/exec.js";
import {
  applyToOpenVswitch,
  defaultOvsRunDir,
  type OvsdbOperation,
  type OvsdbSession,
  ovsReconfigureMs,
  selectOvsRows,
  setOf,
  uuidOf,
  withOpenVswitch,
} from "../../src/ovsdb.js";
import type { BridgeKind } from "./types.js";

const ovsDbSocket = `${defaultOvsRunDir}/db.sock`;
const sysNet = "/sys/class/net";

export interface HostLink {
  name: string;
  /** The Linux bridge it is a port of ("ovs-system" for a kernel-datapath OVS port). */
  master?: string;
}

export interface OvsState {
  bridges: string[];
  /** Port name → its bridge. */
  portBridge: Map<string, string>;
}

/** Everything apply needs to check a bridge and fix a link: Linux bridges, links, OVSDB. */
export interface HostNet {
  bridges: Record<string, BridgeKind>;
  ovs: OvsState;
}

export async function readHostNet(): Promise<HostNet> {
  const ovs = await readOvs();
  return { bridges: { ...linuxBridges(), ...ovsBridges(ovs) }, ovs };
}

/** A host link by name, from sysfs; undefined when there is none. */
export function hostLink(name: string): HostLink | undefined {
  if (name === "" || name.includes("/") || !existsSync(`${sysNet}/${name}/ifindex`))
    return undefined;
  try {
    return { name, master: readlinkSync(`${sysNet}/${name}/master`).split("/").pop() as string };
  } catch {
    return { name };
  }
}

/** The name of the host link with this index (a scan of sysfs: only for a renamed veth). */
export function linkNameByIndex(index: number): string | undefined {
  for (const name of readdirSync(sysNet)) {
    try {
      if (Number(readFileSync(`${sysNet}/${name}/ifindex`, "utf8")) === index) return name;
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

export function linuxBridges(): Record<string, BridgeKind> {
  const bridges: Record<string, BridgeKind> = {};
  for (const name of readdirSync(sysNet)) {
    if (existsSync(`${sysNet}/${name}/bridge`)) bridges[name] = "linux";
  }
  return bridges;
}

export function ovsBridges(ovs: OvsState): Record<string, BridgeKind> {
  return Object.fromEntries(ovs.bridges.map((bridge) => [bridge, "ovs" as const]));
}

/** Bridges and port membership from OVSDB, in one request; nothing when OVS is not running. */
export async function readOvs(): Promise<OvsState> {
  const none: OvsState = { bridges: [], portBridge: new Map<string, string>() };
  if (!existsSync(ovsDbSocket)) return none;
  try {
    return await withOvs(5_000, async (session) => {
      const { Bridge: bridgeRows = [], Port: portRows = [] } = await selectOvsRows(session, {
        Bridge: ["name", "ports"],
        Port: ["_uuid", "name"],
      });
      const portName = new Map(portRows.map((row) => [uuidOf(row._uuid), String(row.name)]));
      const bridges: string[] = [];
      const portBridge = new Map<string, string>();
      for (const row of bridgeRows) {
        const bridge = String(row.name);
        bridges.push(bridge);
        for (const ref of setOf(row.ports)) {
          const port = portName.get(uuidOf(ref));
          if (port !== undefined && port !== bridge) portBridge.set(port, bridge);
        }
      }
      return { bridges, portBridge };
    });
  } catch {
    return none;
  }
}

function withOvs<T>(timeoutMs: number, work: (session: OvsdbSession) => Promise<T>): Promise<T> {
  return withOpenVswitch(defaultOvsRunDir, { timeoutMs }, work);
}

/**
 * Puts a link's OVS port on `to` (or on no bridge) in one transaction, and takes the port of
 * its old name off every bridge, waiting for ovs-vswitchd as ovs-vsctl does. A port row that
 * exists moves with its uuid: a new row of the same name would collide in the name index.
 */
async function moveOvsPort(link: string, oldName: string, to: string | undefined): Promise<void> {
  await withOvs(ovsReconfigureMs, async (session) => {
    const { Port: ports = [], Bridge: bridges = [] } = await selectOvsRows(session, {
      Port: ["_uuid", "name"],
      Bridge: ["name", "ports"],
    });
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
          row: { name: link, interfaces: ["named-uuid", "iface"] },
        },
        mutateBridgePorts(to, "insert", ["named-uuid", "port"]),
      );
    } else if (to !== undefined && current !== undefined && !holders(current).includes(to)) {
      operations.push(mutateBridgePorts(to, "insert", ["uuid", current]));
    }
    if (operations.length === 0) return;
    await applyToOpenVswitch(session, operations, {
      comment: `op apply (lxc plugin): ${link}`,
      details: [to === undefined ? `${link}: off Open vSwitch` : `${link}: onto ${to}`],
    });
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

/** The pid of a running container's init, from its cgroup (cgroup v1, hybrid or v2). */
export function containerPid(name: string): number | undefined {
  for (const base of ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"]) {
    try {
      const first = readFileSync(`${base}/lxc.payload.${name}/cgroup.procs`, "utf8").split("\n")[0];
      if (first) return Number(first);
    } catch {
      // Not this cgroup layout, or the container stopped meanwhile.
    }
  }
  return undefined;
}

function procFile(pid: number, path: string): string {
  try {
    return readFileSync(`/proc/${pid}/${path}`, "utf8");
  } catch {
    return "";
  }
}

/**
 * The ifindex, here, of the host end of a running container's `ifname`: sysfs inside the
 * container shows its own namespace, and `iflink` there is the peer's index.
 */
export function peerIndex(name: string, ifname: string): number | undefined {
  const pid = containerPid(name);
  const iflink =
    pid === undefined
      ? Number.NaN
      : Number(procFile(pid, `root/sys/class/net/${ifname}/iflink`).trim());
  return Number.isInteger(iflink) && iflink > 0 ? iflink : undefined;
}

/**
 * Whether a running container's own `ifname` is up (IFF_UP in its flags, read through sysfs
 * as the container sees it); undefined when that cannot be read.
 */
export function containerLinkUp(name: string, ifname: string): boolean | undefined {
  const pid = containerPid(name);
  if (pid === undefined) return undefined;
  const flags = Number.parseInt(procFile(pid, `root/sys/class/net/${ifname}/flags`).trim(), 16);
  return Number.isNaN(flags) ? undefined : (flags & 1) === 1;
}

/** A running container's global addresses, from /proc/PID/net of its namespace. */
export function containerAddresses(name: string): string[] {
  const pid = containerPid(name);
  if (pid === undefined) return [];
  return [
    ...ipv4Locals(procFile(pid, "net/fib_trie")),
    ...ipv6Globals(procFile(pid, "net/if_inet6")),
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
  exec: Runner,
  link: string,
  bridge: { name: string; kind: BridgeKind },
  previous: { link?: string; ovsBridge?: string },
): Promise<void> {
  const oldName = previous.link ?? link;
  if (bridge.kind === "linux") {
    if (previous.ovsBridge !== undefined) await moveOvsPort(link, oldName, undefined);
    await exec.run("ip", ["link", "set", "dev", link, "master", bridge.name]);
  } else {
    await exec.run("ip", ["link", "set", "dev", link, "nomaster"]);
    await moveOvsPort(link, oldName, bridge.name);
  }
}
