/**
 * What the lxc plugin reads and changes on the host itself, besides Incus. Reads are sysfs and
 * /proc files (a running container's host veth, its bridge, its addresses; the Linux bridges),
 * so a query starts no process; OVSDB is read (one ovs-vsctl call) only when an OVS bridge is
 * involved. The few live fixes Incus has no call for (rename a veth, re-enrol it) run through
 * ctx.exec.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Runner } from "../../src/exec.js";
import type { BridgeKind } from "./types.js";

export const ovsDbSocket = "/var/run/openvswitch/db.sock";
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

export async function readHostNet(exec: Runner): Promise<HostNet> {
  const ovs = await readOvs(exec);
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

type OvsAtom = [string, unknown];
interface OvsTable {
  headings: string[];
  data: unknown[][];
}

/** Bridges and port membership from OVSDB, in one ovs-vsctl call; nothing when OVS is not running. */
export async function readOvs(exec: Runner): Promise<OvsState> {
  const none: OvsState = { bridges: [], portBridge: new Map<string, string>() };
  if (!existsSync(ovsDbSocket)) return none;
  const result = await exec.run(
    "ovs-vsctl",
    [
      "--timeout=5",
      "--format=json",
      "--",
      "--columns=name,ports",
      "list",
      "Bridge",
      "--",
      "--columns=_uuid,name",
      "list",
      "Port",
    ],
    { check: false },
  );
  if (result.exitCode !== 0) return none;
  const [bridgeTable, portTable] = result.stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as OvsTable);
  const uuids = (value: unknown): string[] => {
    const atom = value as OvsAtom;
    if (atom[0] === "uuid") return [atom[1] as string];
    if (atom[0] === "set") return (atom[1] as OvsAtom[]).map((a) => a[1] as string);
    return [];
  };
  const portName = new Map(
    (portTable?.data ?? []).map((row) => [uuids(row[0])[0] ?? "", String(row[1])]),
  );
  const bridges: string[] = [];
  const portBridge = new Map<string, string>();
  for (const row of bridgeTable?.data ?? []) {
    const bridge = String(row[0]);
    bridges.push(bridge);
    for (const uuid of uuids(row[1])) {
      const port = portName.get(uuid);
      if (port !== undefined && port !== bridge) portBridge.set(port, bridge);
    }
  }
  return { bridges, portBridge };
}

/** The pid of a running container's init, from its cgroup (cgroup v1, hybrid or v2). */
function containerPid(name: string): number | undefined {
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
  if (previous.ovsBridge !== undefined) {
    await exec.run("ovs-vsctl", [
      "--timeout=30",
      "--if-exists",
      "del-port",
      previous.ovsBridge,
      previous.link ?? link,
    ]);
  }
  if (bridge.kind === "linux") {
    await exec.run("ip", ["link", "set", "dev", link, "master", bridge.name]);
  } else {
    await exec.run("ip", ["link", "set", "dev", link, "nomaster"]);
    await exec.run("ovs-vsctl", ["--timeout=30", "--may-exist", "add-port", bridge.name, link]);
  }
}
