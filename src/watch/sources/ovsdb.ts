/**
 * Hints from an OVSDB `monitor` (RFC 7047 §4.1.5) of the Bridge, Port and Interface columns
 * the network plugin reads: every change after the first answer is an `update` notification.
 * All of Open vSwitch is one action of the network plugin, so every hint has that one id.
 */
import { Observable } from "rxjs";
import { type OvsdbTableUpdates, openOvsdb } from "../../ovsdb.js";
import type { Hint, HintSource } from "../hint.js";
import { networkPlugin, type SourceIds } from "./ids.js";

const source = "ovsdb";
const database = "Open_vSwitch";
/** How many rows one hint's `what` names; the rest are counted. */
const namedRows = 3;

/** The hint one `update` notification gives, or undefined when it names no row. */
export function ovsdbUpdateHint(updates: unknown, ids: SourceIds): Hint | undefined {
  if (!isObject(updates)) return undefined;
  const changes: string[] = [];
  for (const [table, rows] of Object.entries(updates)) {
    if (!isObject(rows)) continue;
    for (const row of Object.values(rows)) {
      if (!isObject(row)) continue;
      const old = isObject(row.old) ? row.old : undefined;
      const now = isObject(row.new) ? row.new : undefined;
      if (!old && !now) continue;
      const verb = !old ? "added" : !now ? "deleted" : "changed";
      const name = now?.name ?? old?.name;
      // A name is shown only when it is a plain one: the log gets no control characters.
      const shown = typeof name === "string" && /^[\x21-\x7e]{1,64}$/.test(name) ? ` ${name}` : "";
      changes.push(`${table}${shown} ${verb}`);
    }
  }
  if (changes.length === 0) return undefined;
  const more = changes.length > namedRows ? ` and ${changes.length - namedRows} more` : "";
  return {
    plugin: networkPlugin,
    id: ids.ovsDatabase,
    source,
    what: `${changes.slice(0, namedRows).join(", ")}${more}`,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The OVSDB source on `socketPath` (`OP_OVS_RUNDIR`/db.sock), monitoring `columns`. */
export function ovsdbSource(
  ids: SourceIds,
  socketPath: string,
  columns: Readonly<Record<string, readonly string[]>>,
  /** OP_OVSDB_TIMEOUT: replaces the wait for the connection and the monitor's first answer. */
  timeoutSeconds?: number,
): HintSource {
  // OVSDB sends a row's uuid as the update's key; `_uuid` is no column a monitor may name.
  const tables = Object.fromEntries(
    Object.entries(columns).map(([table, names]) => [
      table,
      { columns: names.filter((name) => name !== "_uuid") },
    ]),
  );
  return {
    name: source,
    plugins: [networkPlugin],
    hints(): Observable<Hint> {
      return new Observable<Hint>((subscriber) => {
        let stopped = false;
        let close = () => {};
        const handle = (updates: OvsdbTableUpdates) => {
          const hint = ovsdbUpdateHint(updates, ids);
          if (hint) subscriber.next(hint);
        };
        openOvsdb(
          socketPath,
          "start Open vSwitch, or point OP_OVS_RUNDIR at its run directory",
          timeoutSeconds === undefined ? {} : { overrideMs: timeoutSeconds * 1000 },
        )
          .then(async (session) => {
            close = () => session.close();
            if (stopped) return close();
            // The rows as they are now are the watch's own first read: only changes are hints.
            await session.monitor(database, tables, {
              onUpdate: handle,
              onLost: (error) => subscriber.error(error),
            });
          })
          .catch((error: unknown) => {
            if (!stopped) subscriber.error(error);
          });
        return () => {
          stopped = true;
          close();
        };
      });
    },
  };
}
