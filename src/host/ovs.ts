/**
 * Open vSwitch as op sees it: one model of its database and the operations both plugins that
 * touch it use (network: bridges and ports; lxc: a container's veth as a port). It talks to
 * ovsdb-server over the JSON-RPC client in src/ovsdb.ts, on the socket in the run directory
 * that the settings name (OP_OVS_RUNDIR), and reads ovs-vswitchd's pid file and namespace
 * through the host's files (src/host/sys.ts). Plugins reach it as `ctx.host.ovs`.
 */
import { OpError } from "../errors.js";
import {
  type OvsdbOperation,
  type OvsdbOptions,
  OvsdbRefusal,
  type OvsdbSession,
  openOvsdb,
} from "../ovsdb.js";
import type { Settings } from "./settings.js";
import { type Sys, sameNamespace } from "./sys.js";

export const openVswitchDatabase = "Open_vSwitch";

export const ovsStartHint =
  "start Open vSwitch: /usr/share/openvswitch/scripts/ovs-ctl start (in a clone of op, scripts/setup-ovs.sh installs and starts it)";

/** How long ovs-vswitchd may take to apply a transaction (ovs-vsctl's --timeout, as op used it). */
export const ovsReconfigureMs = 30_000;
/** How long a read of the database may take. */
const readMs = 5_000;

export type OvsdbRow = Record<string, unknown>;
/** The tables op reads and writes. */
export type OvsTable = "Bridge" | "Port" | "Interface";
export type OvsRows = Record<OvsTable, OvsdbRow[]>;
/** The columns to read of each table named. */
export type OvsColumns = Partial<Record<OvsTable, string[]>>;

/** Which bridges exist and which bridge holds each port: what both plugins need to know. */
export interface OvsTopology {
  bridges: string[];
  /** Port name → its bridge (a bridge's own internal port is left out). */
  portBridge: Map<string, string>;
}

/** One change: rows read first (when `read` names some), operations built from them. */
export interface OvsChange {
  /** The transaction's comment in OVSDB's log (which plugin, what for). */
  comment: string;
  /** Lines that say what the change was for, shown when OVSDB refuses it. */
  details?: string[];
  /** Columns to read first, in the same session; none: the rows given are empty. */
  read?: OvsColumns;
  /** The operations, from the rows read. None: nothing is committed. */
  operations(rows: OvsRows): OvsdbOperation[];
}

/** Whether Open vSwitch can be used from a namespace, and why not. */
export type OvsReach = { here: true } | { here: false; reason: string };

export interface OvsHost {
  /** Where ovs-vswitchd keeps db.sock and its pid file. */
  readonly runDir: string;
  /**
   * Whether OVS is in reach from `netns` (undefined: op's own namespace). OVS is host-wide
   * while links are per namespace: its ports' links live in the namespace of ovs-vswitchd.
   */
  reach(netns: string | undefined): OvsReach;
  /** Whether ovsdb-server's socket is there (no socket: no Open vSwitch on this host). */
  present(): boolean;
  /** The columns named of each table, in one request. Rejects when OVSDB cannot be read. */
  select(columns: OvsColumns): Promise<OvsRows>;
  /** Bridges and port membership; undefined when Open vSwitch is not running or not answering. */
  topology(): Promise<OvsTopology | undefined>;
  /**
   * One transaction that also asks ovs-vswitchd to reconfigure (next_cfg), then a wait until
   * it has (cur_cfg), as ovs-vsctl does: the links of new internal ports exist only then.
   * All of it commits or none does; a refusal is an `apply-failed` error naming the reason.
   */
  change(change: OvsChange): Promise<void>;
  /** Open vSwitch's version as its database records it (op doctor). */
  version(timeoutMs: number): Promise<string>;
}

export interface OvsHostOptions {
  runDir: string;
  /** When set, replaces every wait for a connection or answer (OP_OVSDB_TIMEOUT). */
  timeoutSeconds?: number;
  /** Sees every request as it is sent (tests count transactions with it). */
  onRequest?: (method: string, params: unknown) => void;
}

/** The options the settings give. */
export function ovsOptions(settings: Settings): OvsHostOptions {
  return {
    runDir: settings.ovs.runDir,
    ...(settings.ovs.timeoutSeconds === undefined
      ? {}
      : { timeoutSeconds: settings.ovs.timeoutSeconds }),
  };
}

/** Open vSwitch on the socket in `options.runDir`; its pid file and namespace read through `sys`. */
export function createOvsHost(options: OvsHostOptions, sys: Sys): OvsHost {
  const socket = `${options.runDir}/db.sock`;
  const session = async <T>(timeoutMs: number, work: (s: OvsdbSession) => Promise<T>) => {
    const opened = await openOvsdb(socket, ovsStartHint, {
      timeoutMs,
      ...(options.timeoutSeconds === undefined
        ? {}
        : { overrideMs: options.timeoutSeconds * 1000 }),
      ...(options.onRequest === undefined ? {} : { onRequest: options.onRequest }),
    } satisfies OvsdbOptions);
    try {
      return await work(opened);
    } finally {
      opened.close();
    }
  };
  const host: OvsHost = {
    runDir: options.runDir,
    reach(netns) {
      const pidFile = `${options.runDir}/ovs-vswitchd.pid`;
      const pid = sys.text(pidFile)?.trim();
      if (pid === undefined || pid === "")
        return {
          here: false,
          reason: `ovs-vswitchd is not running (no pid file in ${options.runDir})`,
        };
      const theirs = sys.netnsOfProcess(Number(pid));
      const mine = netns === undefined ? sys.netnsOfProcess("self") : sys.namedNetns(netns);
      if (theirs === undefined || mine === undefined)
        return { here: false, reason: `ovs-vswitchd is not running (pid ${pid} is gone)` };
      return sameNamespace(theirs, mine)
        ? { here: true }
        : {
            here: false,
            reason: "Open vSwitch runs in another network namespace than the one op works in",
          };
    },
    present() {
      return sys.exists(socket);
    },
    select(columns) {
      return session(readMs, (opened) => selectRows(opened, columns));
    },
    async topology() {
      if (!host.present()) return undefined;
      try {
        return topologyOf(
          await host.select({ Bridge: ["name", "ports"], Port: ["_uuid", "name"] }),
        );
      } catch {
        return undefined;
      }
    },
    change(change) {
      return session(ovsReconfigureMs, async (opened) => {
        const rows =
          change.read === undefined ? emptyRows() : await selectRows(opened, change.read);
        const operations = change.operations(rows);
        if (operations.length === 0) return;
        await commitAndWait(opened, operations, change);
      });
    },
    async version(timeoutMs) {
      const rows = await session(timeoutMs, (opened) =>
        opened.transact(openVswitchDatabase, [
          { op: "select", table: openVswitchDatabase, where: [], columns: ["ovs_version"] },
        ]),
      );
      const version = rows[0]?.rows?.[0]?.ovs_version;
      return typeof version === "string" ? version : "(version not set)";
    },
  };
  return host;
}

function emptyRows(): OvsRows {
  return { Bridge: [], Port: [], Interface: [] };
}

/** All rows of each table named, with the columns given for it, in one request. */
async function selectRows(session: OvsdbSession, columns: OvsColumns): Promise<OvsRows> {
  const entries = Object.entries(columns) as [OvsTable, string[]][];
  const results = await session.transact(
    openVswitchDatabase,
    entries.map(([table, wanted]) => ({ op: "select", table, where: [], columns: wanted })),
  );
  const rows = emptyRows();
  entries.forEach(([table], i) => {
    rows[table] = results[i]?.rows ?? [];
  });
  return rows;
}

/** Pure: bridges and which bridge holds each port, from Bridge (name, ports) and Port (_uuid, name). */
export function topologyOf(rows: Pick<OvsRows, "Bridge" | "Port">): OvsTopology {
  const portName = new Map(rows.Port.map((row) => [uuidOf(row._uuid), String(row.name)]));
  const bridges: string[] = [];
  const portBridge = new Map<string, string>();
  for (const row of rows.Bridge) {
    const bridge = String(row.name);
    bridges.push(bridge);
    for (const ref of setOf(row.ports)) {
      const port = portName.get(uuidOf(ref));
      if (port !== undefined && port !== bridge) portBridge.set(port, bridge);
    }
  }
  return { bridges, portBridge };
}

async function commitAndWait(
  session: OvsdbSession,
  operations: readonly OvsdbOperation[],
  change: OvsChange,
): Promise<void> {
  let nextCfg: unknown;
  try {
    const results = await session.transact(openVswitchDatabase, [
      { op: "comment", comment: change.comment },
      ...operations,
      { op: "mutate", table: openVswitchDatabase, where: [], mutations: [["next_cfg", "+=", 1]] },
      { op: "select", table: openVswitchDatabase, where: [], columns: ["next_cfg"] },
    ]);
    nextCfg = results.at(-1)?.rows?.[0]?.next_cfg;
  } catch (error) {
    if (!(error instanceof OvsdbRefusal)) throw error;
    throw new OpError(
      "apply-failed",
      `Open vSwitch refused the transaction (nothing of it was applied): ${error.message}`,
      {
        hint: "fix the file and run op apply again",
        ...(change.details === undefined ? {} : { details: change.details }),
      },
    );
  }
  if (typeof nextCfg !== "number") throw new Error("bug: OVSDB returned no next_cfg");
  try {
    await session.transact(
      openVswitchDatabase,
      [
        {
          op: "wait",
          table: openVswitchDatabase,
          where: [["cur_cfg", ">=", nextCfg]],
          columns: ["cur_cfg"],
          until: "!=",
          rows: [],
          timeout: ovsReconfigureMs,
        },
      ],
      { timeoutMs: ovsReconfigureMs + 5_000 },
    );
  } catch (error) {
    if (!(error instanceof OvsdbRefusal)) throw error;
    throw new OpError(
      "apply-failed",
      `the changes are in OVSDB, but ovs-vswitchd did not apply them within ${ovsReconfigureMs / 1000} s`,
      { hint: "is ovs-vswitchd running? /usr/share/openvswitch/scripts/ovs-ctl status" },
    );
  }
}

/** OVSDB's JSON (RFC 7047 §5.1): a ["uuid", id] reference's id, or "". */
export function uuidOf(value: unknown): string {
  return Array.isArray(value) && value[0] === "uuid" ? String(value[1]) : "";
}

/** The members of a ["set", [...]] value, or of a bare one-member value. */
export function setOf(value: unknown): unknown[] {
  if (Array.isArray(value) && value[0] === "set") return value[1] as unknown[];
  return value === undefined ? [] : [value];
}

/** A ["map", [[k, v]...]] value as an object. */
export function mapOf(value: unknown): Record<string, string> {
  if (!Array.isArray(value) || value[0] !== "map") return {};
  return Object.fromEntries((value[1] as [string, string][]).map(([k, v]) => [k, String(v)]));
}
