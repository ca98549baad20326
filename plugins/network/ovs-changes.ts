/**
 * The typed change entries of the `ovs-db` action (types.ts OvsChange): built only here, so
 * each entry's `path` (what the plan and the ledger show) always matches its fields.
 */
import type { LiveOvsPort, NewOvsBridge, NewOvsPort, OvsChange } from "./types.js";

type BridgeField = "datapath" | "mtu" | "mac" | "owner";
type PortField = "tag" | "internal" | "mtu" | "mac" | "owner";
type Value = string | number | boolean | undefined;

/** `before`/`after` keys only for the values that are there (a missing one means unset). */
function values<T extends Value>(before: T, after: T): { before?: T; after?: T } {
  return {
    ...(before === undefined ? {} : { before }),
    ...(after === undefined ? {} : { after }),
  };
}

export const ovsChange = {
  addBridge: (bridge: string, after: NewOvsBridge): OvsChange => ({
    path: `bridge/${bridge}`,
    table: "bridge",
    bridge,
    op: "add",
    after,
  }),
  removeBridge: (bridge: string, before: { datapath: string; ports: string[] }): OvsChange => ({
    path: `bridge/${bridge}`,
    table: "bridge",
    bridge,
    op: "remove",
    before,
  }),
  setBridge: (
    bridge: string,
    field: BridgeField,
    before: string | number | undefined,
    after: string | number | undefined,
  ): OvsChange => ({
    path: `bridge/${bridge}/${field}`,
    table: "bridge",
    bridge,
    op: "set",
    field,
    ...values(before, after),
  }),
  addPort: (bridge: string, port: string, after: NewOvsPort): OvsChange => ({
    path: `port/${bridge}/${port}`,
    table: "port",
    bridge,
    port,
    op: "add",
    after,
  }),
  removePort: (bridge: string, before: LiveOvsPort): OvsChange => ({
    path: `port/${bridge}/${before.name}`,
    table: "port",
    bridge,
    port: before.name,
    op: "remove",
    before,
  }),
  setPort: (
    bridge: string,
    port: string,
    field: PortField,
    before: Value,
    after: Value,
  ): OvsChange => ({
    path: `port/${bridge}/${port}/${field}`,
    table: "port",
    bridge,
    port,
    op: "set",
    field,
    ...values(before, after),
  }),
};
