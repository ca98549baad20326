/**
 * Open vSwitch: one OVSDB read (three chained `list`s in one ovs-vsctl call) and one chained
 * ovs-vsctl transaction per run. OVS is host-wide while netlink is per namespace, so OVS is
 * only read when op works in the namespace of ovs-vswitchd (where its ports' links live).
 */
import { readFile, stat } from "node:fs/promises";
import { OpError } from "../../src/errors.js";
import type { Runner } from "../../src/exec.js";
import type { FieldChange } from "../../src/plugin.js";
import type { LiveOvs, LiveOvsBridge, LiveOvsPort } from "./types.js";
import { ovsOwnerKeys } from "./types.js";

export interface OvsConfig {
  /** Where ovs-vswitchd keeps db.sock and its pid file. */
  runDir: string;
}

export const defaultOvsConfig: OvsConfig = { runDir: "/var/run/openvswitch" };

export const ovsStartHint =
  "start Open vSwitch: /usr/share/openvswitch/scripts/ovs-ctl start (scripts/setup-ovs.sh installs and starts it)";

export function ovsctlArgs(config: OvsConfig): string[] {
  return [`--db=unix:${config.runDir}/db.sock`, "--timeout=30"];
}

const columns = {
  Bridge: "_uuid,name,ports,external_ids,datapath_type,other_config",
  Port: "_uuid,name,interfaces,tag,external_ids",
  Interface: "_uuid,name,type,mtu_request,mac,error,external_ids",
};

export async function readOvs(exec: Runner, config: OvsConfig): Promise<LiveOvs> {
  const where = await vswitchdNamespace(exec, config);
  if (where !== "here") return { available: false, reason: where };
  let stdout: string;
  try {
    const result = await exec.run(
      "ovs-vsctl",
      [
        ...ovsctlArgs(config).map((a) => (a.startsWith("--timeout") ? "--timeout=5" : a)),
        "--format=json",
        ...Object.entries(columns).flatMap(([table, cols]) => [
          "--",
          `--columns=${cols}`,
          "list",
          table,
        ]),
      ],
      { check: false },
    );
    if (result.exitCode !== 0) {
      return { available: false, reason: `OVSDB did not answer: ${result.stderr.trim()}` };
    }
    stdout = result.stdout;
  } catch (error) {
    if (error instanceof OpError && error.code === "tool-missing") {
      return { available: false, reason: "ovs-vsctl is not installed" };
    }
    throw error;
  }
  return { available: true, bridges: parseOvsTables(stdout) };
}

/** "here", or why OVS is out of reach from the namespace op works in. */
async function vswitchdNamespace(exec: Runner, config: OvsConfig): Promise<string> {
  let pid: string;
  try {
    pid = (await readFile(`${config.runDir}/ovs-vswitchd.pid`, "utf8")).trim();
  } catch {
    return `ovs-vswitchd is not running (no pid file in ${config.runDir})`;
  }
  const ours = exec.netns === undefined ? "/proc/self/ns/net" : `/run/netns/${exec.netns}`;
  try {
    const [theirs, mine] = await Promise.all([stat(`/proc/${pid}/ns/net`), stat(ours)]);
    if (theirs.ino !== mine.ino || theirs.dev !== mine.dev) {
      return "Open vSwitch runs in another network namespace than the one op works in";
    }
  } catch {
    return `ovs-vswitchd is not running (pid ${pid} is gone)`;
  }
  return "here";
}

type OvsValue = unknown;
interface Table {
  headings: string[];
  data: OvsValue[][];
}

/** Parses the three JSON tables `ovs-vsctl --format=json list` prints, one per line. */
export function parseOvsTables(stdout: string): LiveOvsBridge[] {
  const tables = stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Table);
  const [bridges, ports, interfaces] = tables.map(rowsOf);
  if (!bridges || !ports || !interfaces)
    throw new Error("bug: ovs-vsctl printed fewer than 3 tables");
  const interfaceByUuid = new Map(interfaces.map((row) => [uuidOf(row._uuid), row]));
  const portByUuid = new Map(ports.map((row) => [uuidOf(row._uuid), row]));
  return bridges.map((bridge): LiveOvsBridge => {
    const name = String(bridge.name);
    const portRows = setOf(bridge.ports).flatMap((ref) => {
      const port = portByUuid.get(uuidOf(ref));
      return port ? [port] : [];
    });
    const livePorts = portRows.map((port): LiveOvsPort & { self: boolean } => {
      const iface = interfaceByUuid.get(uuidOf(setOf(port.interfaces)[0]));
      const tag = scalarOf(port.tag);
      const mtu = scalarOf(iface?.mtu_request);
      const mac = scalarOf(iface?.mac);
      const error = scalarOf(iface?.error);
      return {
        self: String(port.name) === name,
        name: String(port.name),
        type: String(iface?.type ?? ""),
        owned: isOwned(mapOf(port.external_ids)),
        ...(typeof tag === "number" ? { tag } : {}),
        ...(typeof mtu === "number" ? { mtu } : {}),
        ...(typeof mac === "string" ? { mac: mac.toLowerCase() } : {}),
        ...(typeof error === "string" ? { error } : {}),
      };
    });
    const own = livePorts.find((port) => port.self);
    const hwaddr = mapOf(bridge.other_config).hwaddr;
    return {
      name,
      datapath: String(bridge.datapath_type ?? ""),
      owned: isOwned(mapOf(bridge.external_ids)),
      ...(own?.mtu === undefined ? {} : { mtu: own.mtu }),
      ...(hwaddr === undefined ? {} : { mac: hwaddr.toLowerCase() }),
      ports: livePorts
        .filter((port) => !port.self)
        .map(({ self: _self, ...port }) => port)
        .sort((a, b) => a.name.localeCompare(b.name)),
    };
  });
}

function isOwned(externalIds: Record<string, string>): boolean {
  const plugin = externalIds[ovsOwnerKeys.plugin];
  return (
    externalIds[ovsOwnerKeys.managed] === "true" && (plugin === undefined || plugin === "network")
  );
}

function rowsOf(table: Table): Record<string, OvsValue>[] {
  return table.data.map((row) => Object.fromEntries(table.headings.map((h, i) => [h, row[i]])));
}

/** OVSDB JSON: ["uuid", id], ["set", [...]], ["map", [[k, v]...]] or a bare scalar. */
function uuidOf(value: OvsValue): string {
  return Array.isArray(value) && value[0] === "uuid" ? String(value[1]) : "";
}

function setOf(value: OvsValue): OvsValue[] {
  if (Array.isArray(value) && value[0] === "set") return value[1] as OvsValue[];
  return value === undefined ? [] : [value];
}

function mapOf(value: OvsValue): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== "map") return {};
  return Object.fromEntries((value[1] as [string, string][]).map(([k, v]) => [k, String(v)]));
}

/** An optional column: an empty set means unset. */
function scalarOf(value: OvsValue): string | number | undefined {
  if (typeof value === "string" || typeof value === "number") return value;
  if (Array.isArray(value) && value[0] === "set") {
    const first = (value[1] as OvsValue[])[0];
    return typeof first === "string" || typeof first === "number" ? first : undefined;
  }
  return undefined;
}

/** Where a change of the `ovs:db` action applies: `bridge/B[/field]` or `port/B/P[/field]`. */
export function parseOvsPath(
  path: string,
):
  | { table: "bridge"; bridge: string; field?: string }
  | { table: "port"; bridge: string; port: string; field?: string } {
  const [table, bridge = "", third, fourth] = path.split("/");
  if (table === "bridge")
    return { table, bridge, ...(third === undefined ? {} : { field: third }) };
  if (table === "port" && third !== undefined) {
    return { table, bridge, port: third, ...(fourth === undefined ? {} : { field: fourth }) };
  }
  throw new Error(`bug: unknown OVS change path ${path}`);
}

const ownerSettings = [
  `external_ids:${ovsOwnerKeys.managed}=true`,
  `external_ids:${ovsOwnerKeys.plugin}=network`,
];

/**
 * The ovs-vsctl commands (to be joined with `--`) for the changes of one `ovs:db` action.
 * Deletes first, then bridges before their ports, so one transaction holds them all.
 */
export function ovsCommands(changes: readonly FieldChange[]): string[][] {
  const deletes: string[][] = [];
  const bridges: string[][] = [];
  const ports: string[][] = [];
  for (const change of changes) {
    const where = parseOvsPath(change.path);
    const after = change.after as Record<string, unknown> | undefined;
    if (where.table === "bridge") {
      if (where.field === undefined && after === undefined) {
        deletes.push(["--if-exists", "del-br", where.bridge]);
      } else if (where.field === undefined && after) {
        bridges.push(["--may-exist", "add-br", where.bridge]);
        bridges.push(["set", "bridge", where.bridge, ...ownerSettings]);
        bridges.push(...bridgeSettings(where.bridge, after));
      } else if (where.field !== undefined) {
        bridges.push(...bridgeSettings(where.bridge, { [where.field]: change.after }));
      }
      continue;
    }
    const { bridge, port } = where;
    if (where.field === undefined && after === undefined) {
      deletes.push(["--if-exists", "del-port", bridge, port]);
    } else if (where.field === undefined && after) {
      const tag = after.tag === undefined ? [] : [`tag=${String(after.tag)}`];
      // A port on another bridge is moved: add-port --may-exist would refuse it.
      if (typeof after.from === "string") ports.push(["--if-exists", "del-port", after.from, port]);
      ports.push(["--may-exist", "add-port", bridge, port, ...tag, ...ownerSettings]);
      ports.push(...interfaceSettings(port, after));
    } else if (where.field === "tag") {
      ports.push(
        change.after === undefined
          ? ["clear", "port", port, "tag"]
          : ["set", "port", port, `tag=${String(change.after)}`],
      );
    } else if (where.field !== undefined) {
      ports.push(...interfaceSettings(port, { [where.field]: change.after }));
    }
  }
  return [...deletes, ...bridges, ...ports];
}

function bridgeSettings(bridge: string, fields: Record<string, unknown>): string[][] {
  const commands: string[][] = [];
  if ("datapath" in fields && fields.datapath !== undefined) {
    commands.push(["set", "bridge", bridge, `datapath_type=${String(fields.datapath)}`]);
  }
  if ("mac" in fields) {
    commands.push(
      fields.mac === undefined
        ? ["remove", "bridge", bridge, "other_config", "hwaddr"]
        : ["set", "bridge", bridge, `other_config:hwaddr="${String(fields.mac)}"`],
    );
  }
  if ("mtu" in fields) commands.push(...interfaceSettings(bridge, { mtu: fields.mtu }));
  return commands;
}

function interfaceSettings(name: string, fields: Record<string, unknown>): string[][] {
  const commands: string[][] = [];
  if (fields.internal === true) commands.push(["set", "interface", name, "type=internal"]);
  if (fields.internal === false) commands.push(["set", "interface", name, 'type=""']);
  if ("mtu" in fields) {
    commands.push(
      fields.mtu === undefined
        ? ["clear", "interface", name, "mtu_request"]
        : ["set", "interface", name, `mtu_request=${String(fields.mtu)}`],
    );
  }
  if ("mac" in fields) {
    commands.push(
      fields.mac === undefined
        ? ["clear", "interface", name, "mac"]
        : ["set", "interface", name, `mac="${String(fields.mac)}"`],
    );
  }
  return commands;
}
