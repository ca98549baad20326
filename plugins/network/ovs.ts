/**
 * The network plugin's side of Open vSwitch: its live bridges and ports from the rows the host
 * layer reads (src/host/ovs.ts, `ctx.host.ovs`), and the operations of the one transaction
 * that makes all of a run's changes. OVS is host-wide while netlink is per namespace, so OVS
 * is only read when op works in the namespace of ovs-vswitchd (where its ports' links live).
 */
import { OpError } from "../../src/errors.js";
import type { OvsColumns, OvsHost, OvsRows } from "../../src/host/ovs.js";
import { mapOf, openVswitchDatabase, setOf, uuidOf } from "../../src/host/ovs.js";
import { byName } from "../../src/order.js";
import type { OvsdbOperation } from "../../src/ovsdb.js";
import type { LiveOvs, LiveOvsBridge, LiveOvsPort, OvsChange } from "./types.js";
import { ovsOwnerKeys } from "./types.js";

const database = openVswitchDatabase;

/** The columns the plugin reads of each table (the watch monitors the same ones). */
export const ovsColumns = {
  Bridge: ["_uuid", "name", "ports", "external_ids", "datapath_type", "other_config"],
  Port: ["_uuid", "name", "interfaces", "tag", "external_ids"],
  Interface: ["_uuid", "name", "type", "mtu_request", "mac", "error", "external_ids"],
} satisfies OvsColumns;

type Row = Record<string, unknown>;

export type { OvsRows } from "../../src/host/ovs.js";

/** The live bridges and ports, or why Open vSwitch is out of reach from the namespace `netns`. */
export async function readOvs(ovs: OvsHost, netns: string | undefined): Promise<LiveOvs> {
  const reach = ovs.reach(netns);
  if (!reach.here) return { available: false, reason: reach.reason };
  try {
    return { available: true, bridges: parseOvsRows(await ovs.select(ovsColumns)) };
  } catch (error) {
    return {
      available: false,
      reason: `OVSDB did not answer: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

type OvsValue = unknown;

/** Pure: the live bridges and ports from the rows of the Bridge, Port and Interface tables. */
export function parseOvsRows({
  Bridge: bridges,
  Port: ports,
  Interface: interfaces,
}: OvsRows): LiveOvsBridge[] {
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
        .sort(byName),
    };
  });
}

function isOwned(externalIds: Record<string, string>): boolean {
  const plugin = externalIds[ovsOwnerKeys.plugin];
  return (
    externalIds[ovsOwnerKeys.managed] === "true" && (plugin === undefined || plugin === "network")
  );
}

/** An optional column (RFC 7047 §5.1): an empty set means unset. */
function scalarOf(value: OvsValue): string | number | undefined {
  if (typeof value === "string" || typeof value === "number") return value;
  if (Array.isArray(value) && value[0] === "set") {
    const first = (value[1] as OvsValue[])[0];
    return typeof first === "string" || typeof first === "number" ? first : undefined;
  }
  return undefined;
}

/** What op writes into a row it creates, and what marks it as op's (types.ts). */
const ownerIds: [string, string][] = [
  [ovsOwnerKeys.managed, "true"],
  [ovsOwnerKeys.plugin, "network"],
];
/** Marks a row as op's, replacing whatever values of op's keys it had. */
const ownerMutations: unknown[] = [
  ["external_ids", "delete", ["set", ownerIds.map(([key]) => key)]],
  ["external_ids", "insert", ["map", ownerIds]],
];

const emptySet = ["set", []];
const whereName = (name: string) => [["name", "==", name]];
const uuidSet = (uuids: readonly OvsValue[]) => ["set", uuids];

/** Row uuids by name, for the operations that remove or move an existing row. */
export interface OvsUuids {
  bridges: ReadonlyMap<string, string>;
  ports: ReadonlyMap<string, string>;
}

/**
 * The operations of one transaction doing the changes of an `ovs-db` action (pure).
 * Removals first; then new interfaces and ports, then the bridges that hold them, so that
 * every "named-uuid" is inserted before it is referenced; then changes to existing rows.
 * A removal of a row that is already gone is left out (it is what the file asks for).
 */
export function ovsOperations(changes: readonly OvsChange[], uuids: OvsUuids): OvsdbOperation[] {
  const removals: OvsdbOperation[] = [];
  const inserts: OvsdbOperation[] = [];
  const bridgeInserts: OvsdbOperation[] = [];
  const updates: OvsdbOperation[] = [];
  let named = 0;
  const nextName = (kind: string) => `${kind}${named++}`;

  // A new bridge's row lists its ports, so the ports of new bridges are gathered first.
  const newBridges = new Map<string, { row: Row; ports: OvsValue[] }>();
  for (const change of changes) {
    if (change.table !== "bridge" || change.op !== "add") continue;
    const { after } = change;
    const ownPort = addPortRows(
      inserts,
      nextName,
      change.bridge,
      { internal: true, mtu: after.mtu },
      {},
    );
    newBridges.set(change.bridge, {
      row: {
        name: change.bridge,
        external_ids: ["map", ownerIds],
        ...(after.datapath === undefined ? {} : { datapath_type: after.datapath }),
        ...(after.mac === undefined ? {} : { other_config: ["map", [["hwaddr", after.mac]]] }),
      },
      ports: [ownPort],
    });
  }

  const addToBridge = (bridge: string, port: OvsValue) => {
    const created = newBridges.get(bridge);
    if (created) created.ports.push(port);
    else updates.push(mutate("Bridge", whereName(bridge), [["ports", "insert", uuidSet([port])]]));
  };
  const removeFromBridge = (bridge: string, port: string, into: OvsdbOperation[]) => {
    const uuid = uuids.ports.get(port);
    if (uuid !== undefined)
      into.push(
        mutate("Bridge", whereName(bridge), [["ports", "delete", uuidSet([["uuid", uuid]])]]),
      );
  };

  for (const change of changes) {
    if (change.table === "bridge") {
      if (change.op === "remove") {
        const uuid = uuids.bridges.get(change.bridge);
        if (uuid !== undefined)
          removals.push(mutate(database, [], [["bridges", "delete", uuidSet([["uuid", uuid]])]]));
      } else if (change.op === "set") {
        updates.push(...bridgeUpdates(change.bridge, { [change.field]: change.after }));
      }
      continue;
    }
    const { bridge, port } = change;
    if (change.op === "remove") {
      removeFromBridge(bridge, port, removals);
    } else if (change.op === "add") {
      const { after } = change;
      if (after.from !== undefined) {
        // A port on another bridge moves with its rows: a new row of the same name would
        // collide with the old one in the name index.
        const uuid = uuids.ports.get(port);
        if (uuid === undefined) {
          throw new OpError(
            "apply-failed",
            `OVS port ${port} is no longer on bridge ${after.from}: the host changed during the run`,
            { hint: "run op apply again" },
          );
        }
        removeFromBridge(after.from, port, removals);
        addToBridge(bridge, ["uuid", uuid]);
        updates.push(
          update("Port", whereName(port), { tag: after.tag ?? emptySet }),
          mutate("Port", whereName(port), ownerMutations),
          ...interfaceUpdates(port, after),
        );
      } else {
        addToBridge(
          bridge,
          addPortRows(inserts, nextName, port, after, {
            external_ids: ["map", ownerIds],
            ...(after.tag === undefined ? {} : { tag: after.tag }),
          }),
        );
      }
    } else if (change.field === "owner") {
      updates.push(mutate("Port", whereName(port), ownerMutations));
    } else if (change.field === "tag") {
      updates.push(update("Port", whereName(port), { tag: change.after ?? emptySet }));
    } else {
      updates.push(...interfaceUpdates(port, { [change.field]: change.after }));
    }
  }

  const added: OvsValue[] = [];
  for (const { row, ports } of newBridges.values()) {
    const bridgeName = nextName("bridge");
    bridgeInserts.push({
      op: "insert",
      table: "Bridge",
      "uuid-name": bridgeName,
      row: { ...row, ports: uuidSet(ports) },
    });
    added.push(["named-uuid", bridgeName]);
  }
  if (added.length > 0)
    bridgeInserts.push(mutate(database, [], [["bridges", "insert", uuidSet(added)]]));
  return [...removals, ...inserts, ...bridgeInserts, ...updates];
}

/** Inserts an interface and the port holding it; returns the port's reference. */
function addPortRows(
  into: OvsdbOperation[],
  nextName: (kind: string) => string,
  name: string,
  fields: Record<string, unknown>,
  portRow: Row,
): OvsValue {
  const iface = nextName("iface");
  const port = nextName("port");
  into.push(
    {
      op: "insert",
      table: "Interface",
      "uuid-name": iface,
      row: { name, ...interfaceColumns(fields) },
    },
    {
      op: "insert",
      table: "Port",
      "uuid-name": port,
      row: { name, interfaces: ["named-uuid", iface], ...portRow },
    },
  );
  return ["named-uuid", port];
}

function bridgeUpdates(bridge: string, fields: Record<string, unknown>): OvsdbOperation[] {
  const operations: OvsdbOperation[] = [];
  if ("datapath" in fields && fields.datapath !== undefined)
    operations.push(update("Bridge", whereName(bridge), { datapath_type: fields.datapath }));
  if ("mac" in fields) {
    operations.push(
      mutate("Bridge", whereName(bridge), [
        ["other_config", "delete", ["set", ["hwaddr"]]],
        ...(fields.mac === undefined
          ? []
          : [["other_config", "insert", ["map", [["hwaddr", fields.mac]]]]]),
      ]),
    );
  }
  // Adopting: the bridge gets op's external_ids, as one op created carries them.
  if ("owner" in fields) {
    operations.push(mutate("Bridge", whereName(bridge), ownerMutations));
  }
  // A bridge's MTU is its own internal interface's.
  if ("mtu" in fields) operations.push(...interfaceUpdates(bridge, { mtu: fields.mtu }));
  return operations;
}

function interfaceUpdates(name: string, fields: Record<string, unknown>): OvsdbOperation[] {
  const row = interfaceColumns(fields);
  return Object.keys(row).length === 0 ? [] : [update("Interface", whereName(name), row)];
}

/** Interface columns for the fields given; a field given as undefined is cleared. */
function interfaceColumns(fields: Record<string, unknown>): Row {
  const row: Row = {};
  if (fields.internal === true) row.type = "internal";
  if (fields.internal === false) row.type = "";
  if ("mtu" in fields) row.mtu_request = fields.mtu ?? emptySet;
  if ("mac" in fields) row.mac = fields.mac ?? emptySet;
  return row;
}

function update(table: string, where: unknown[], row: Row): OvsdbOperation {
  return { op: "update", table, where, row };
}

function mutate(table: string, where: unknown[], mutations: unknown[]): OvsdbOperation {
  return { op: "mutate", table, where, mutations };
}

/** Whether the changes remove or move existing rows (which operations name by uuid). */
function needsUuids(changes: readonly OvsChange[]): boolean {
  return changes.some(
    (change) =>
      change.op === "remove" ||
      (change.table === "port" && change.op === "add" && change.after.from !== undefined),
  );
}

/**
 * Applies an `ovs-db` action: one transaction, and a wait until ovs-vswitchd has applied it
 * (src/host/ovs.ts): the links of internal ports exist only then, and the run goes on to set
 * them up and address them.
 */
export async function applyOvs(changes: readonly OvsChange[], ovs: OvsHost): Promise<void> {
  await ovs.change({
    comment: "op apply (network plugin)",
    details: changes.map((c) => c.path),
    // Removals and moves name existing rows by uuid: those are read in the same session.
    ...(needsUuids(changes)
      ? { read: { Bridge: ["_uuid", "name"], Port: ["_uuid", "name"] } }
      : {}),
    operations: (rows) => ovsOperations(changes, uuidsOf(rows)),
  });
}

function uuidsOf(rows: OvsRows): OvsUuids {
  const byNameOf = (table: Row[]) =>
    new Map(table.map((row) => [String(row.name), uuidOf(row._uuid)]));
  return { bridges: byNameOf(rows.Bridge), ports: byNameOf(rows.Port) };
}
