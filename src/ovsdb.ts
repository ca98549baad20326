/**
 * The one module that talks to OVSDB: JSON-RPC (RFC 7047) over ovsdb-server's unix socket.
 * Reading or changing Open vSwitch through `ovs-vsctl` costs a process start and a fetch of
 * the whole database per call; a run needs three such calls (read, transaction, verify), and
 * they were most of op's time on OVS. Here each is one request on a socket.
 *
 * A session is one connection: open, a few requests, close. Failures become OpErrors that
 * carry OVSDB's own words; a socket that is not there says how to start Open vSwitch.
 */
import type { Socket } from "node:net";
import { OpError } from "./errors.js";
import { timeoutFromEnv } from "./exec.js";
import { OutcomeUnknown } from "./outcome.js";
import { trace } from "./trace.js";

/** The same error, marked: a request was on its way, so OVSDB may have carried it out. */
function sentAndLost(error: OpError): OpError {
  return new OpError(error.code, error.message, {
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    cause: new OutcomeUnknown("a request was sent before the connection was lost"),
  });
}

/** One operation of a `transact` request (RFC 7047 §5.2): insert, select, update, mutate… */
export type OvsdbOperation = { op: string } & Record<string, unknown>;

/** The result of one operation: `rows` for select, `uuid` for insert, `count` for update. */
export interface OvsdbResult {
  rows?: Record<string, unknown>[];
  uuid?: [string, string];
  count?: number;
}

export interface OvsdbSession {
  /**
   * One transaction on `database`: all of `operations` commit, or none do (OVSDB's own
   * guarantee). Rejects with the first operation's error, naming the operation.
   */
  transact(
    database: string,
    operations: readonly OvsdbOperation[],
    options?: { timeoutMs?: number },
  ): Promise<OvsdbResult[]>;
  close(): void;
}

export interface OvsdbOptions {
  /**
   * How long a connection or request may take before it fails (default 10 s). OP_OVSDB_TIMEOUT
   * (seconds), when set, replaces this and every request's own.
   */
  timeoutMs?: number;
  /** Sees every request as it is sent (tests use it to count transactions). */
  onRequest?: (method: string, params: unknown) => void;
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

interface Message {
  id?: unknown;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

/** Opens a session; rejects with `daemon-unavailable` when nothing listens on `socketPath`. */
export function openOvsdb(
  socketPath: string,
  hint: string,
  options: OvsdbOptions = {},
): Promise<OvsdbSession> {
  const override = timeoutFromEnv("OP_OVSDB_TIMEOUT", 0) * 1000;
  const timeoutMs = override || (options.timeoutMs ?? 10_000);
  // Fetched late, not imported: the startup snapshot keeps no socket module state.
  const net = process.getBuiltinModule("node:net");
  const unavailable = (why: string) =>
    new OpError("daemon-unavailable", `OVSDB is not reachable at ${socketPath}: ${why}`, {
      hint,
    });
  return new Promise((resolveOpen, rejectOpen) => {
    const socket: Socket = net.createConnection(socketPath);
    const pending = new Map<number, Pending>();
    const splitter = jsonStreamSplitter();
    let nextId = 0;
    let opened = false;

    const failAll = (error: unknown) => {
      for (const entry of pending.values()) {
        clearTimeout(entry.timer);
        entry.reject(error);
      }
      pending.clear();
    };
    const connectTimer = setTimeout(() => {
      socket.destroy();
      rejectOpen(unavailable(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);

    socket.setEncoding("utf8");
    socket.on("connect", () => {
      clearTimeout(connectTimer);
      opened = true;
      resolveOpen(session);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      const why =
        error.code === "ENOENT"
          ? "no such socket (ovsdb-server is not running)"
          : error.code === "ECONNREFUSED"
            ? "connection refused (ovsdb-server is not running)"
            : error.message;
      if (!opened) rejectOpen(unavailable(why));
      else failAll(sentAndLost(unavailable(why)));
    });
    // Requests already sent may have been committed: their outcome is unknown.
    socket.on("close", () => failAll(sentAndLost(unavailable("the connection closed"))));
    socket.on("data", (chunk: string) => {
      let messages: Message[];
      try {
        messages = splitter(chunk) as Message[];
      } catch (error) {
        failAll(unavailable(`it sent something that is not JSON (${String(error)})`));
        socket.destroy();
        return;
      }
      for (const message of messages) {
        // The server's keep-alive: answered, or it drops the connection.
        if (message.method === "echo") {
          socket.write(JSON.stringify({ id: message.id, result: message.params, error: null }));
          continue;
        }
        const entry = typeof message.id === "number" ? pending.get(message.id) : undefined;
        if (!entry) continue;
        pending.delete(message.id as number);
        clearTimeout(entry.timer);
        trace(`ovsdb reply ${message.id}`);
        if (message.error !== null && message.error !== undefined) {
          entry.reject(new OpError("command-failed", `OVSDB: ${describeError(message.error)}`));
        } else {
          entry.resolve(message.result);
        }
      }
    });

    const request = (method: string, params: unknown[], waitMs: number): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const limit = override || waitMs;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(
            new OpError("daemon-unavailable", `OVSDB did not answer ${method} within ${limit} ms`, {
              hint: `${hint}; OP_OVSDB_TIMEOUT=SECONDS waits longer`,
              cause: new OutcomeUnknown(`${method} sent, no answer`),
            }),
          );
        }, limit);
        pending.set(id, { resolve, reject, timer });
        options.onRequest?.(method, params);
        trace(`ovsdb ${method} ${id}`);
        socket.write(JSON.stringify({ id, method, params }));
      });

    const session: OvsdbSession = {
      async transact(database, operations, transactOptions = {}) {
        const results = (await request(
          "transact",
          [database, ...operations],
          transactOptions.timeoutMs ?? timeoutMs,
        )) as (OvsdbResult & { error?: unknown; details?: unknown })[];
        const failed = results.findIndex((result) => result?.error !== undefined);
        if (failed >= 0) {
          const result = results[failed];
          // An error past the last operation is the commit's own (a constraint, a reference).
          const what =
            failed < operations.length
              ? `operation ${failed + 1} (${describeOperation(operations[failed])})`
              : "the commit";
          throw new OvsdbRefusal(`${what}: ${describeError(result)}`, String(result?.error));
        }
        return results;
      },
      close() {
        socket.end();
        socket.destroy();
      },
    };
  });
}

/** OVSDB refused a transaction; `error` is its error tag ("timed out", "constraint violation"…). */
export class OvsdbRefusal extends Error {
  constructor(
    message: string,
    readonly error: string,
  ) {
    super(message);
    this.name = "OvsdbRefusal";
  }
}

function describeError(error: unknown): string {
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    const { error: tag, details } = error as { error?: unknown; details?: unknown };
    if (tag !== undefined)
      return details === undefined ? String(tag) : `${String(tag)}: ${String(details)}`;
  }
  return JSON.stringify(error);
}

function describeOperation(operation: OvsdbOperation | undefined): string {
  if (!operation) return "?";
  const table = typeof operation.table === "string" ? ` ${operation.table}` : "";
  const where = Array.isArray(operation.where) ? ` where ${JSON.stringify(operation.where)}` : "";
  return `${operation.op}${table}${where}`;
}

/**
 * OVSDB sends JSON texts back to back, with no separator: this cuts a stream of chunks into
 * whole messages by counting brackets outside strings. Returns a function fed each chunk in
 * turn; it returns the messages that chunk completed, and keeps the rest for the next one.
 * Strings are skipped with indexOf: a full read of OVSDB is a few hundred kilobytes, mostly
 * strings, and stepping through it one character at a time was measurably slower.
 */
export function jsonStreamSplitter(): (chunk: string) => unknown[] {
  const quote = 34;
  const backslash = 92;
  let buffer = "";
  let depth = 0;
  let inString = false;
  let scanned = 0;
  return (chunk) => {
    buffer += chunk;
    const messages: unknown[] = [];
    let start = 0;
    let i = scanned;
    while (i < buffer.length) {
      if (inString) {
        const end = buffer.indexOf('"', i);
        if (end < 0) {
          i = buffer.length;
          break;
        }
        // A quote preceded by an odd number of backslashes is escaped.
        let slashes = 0;
        while (buffer.charCodeAt(end - 1 - slashes) === backslash) slashes++;
        if (slashes % 2 === 0) inString = false;
        i = end + 1;
        continue;
      }
      const code = buffer.charCodeAt(i);
      if (code === quote) {
        inString = true;
      } else if (code === 123 || code === 91) {
        // { or [
        if (depth === 0) start = i;
        depth++;
      } else if (code === 125 || code === 93) {
        // } or ]
        depth--;
        if (depth < 0) throw new Error(`unbalanced '${buffer[i]}'`);
        if (depth === 0) messages.push(JSON.parse(buffer.slice(start, i + 1)));
      }
      i++;
    }
    if (depth === 0 && !inString) {
      buffer = "";
      scanned = 0;
    } else {
      buffer = buffer.slice(start);
      scanned = i - start;
    }
    return messages;
  };
}

// ─── Open vSwitch's own database ───────────────────────────────────────────────────────────
// What both plugins that touch OVS (network: bridges and ports; lxc: a container's veth as a
// port) need of it: its rows, its JSON values, and a change that ovs-vswitchd has applied.

export const openVswitchDatabase = "Open_vSwitch";

/** Where ovs-vswitchd keeps db.sock and its pid file on Debian. */
export const defaultOvsRunDir = "/var/run/openvswitch";

export const ovsStartHint =
  "start Open vSwitch: /usr/share/openvswitch/scripts/ovs-ctl start (scripts/setup-ovs.sh installs and starts it)";

/** How long ovs-vswitchd may take to apply a transaction (ovs-vsctl's --timeout, as op used it). */
export const ovsReconfigureMs = 30_000;

export type OvsdbRow = Record<string, unknown>;

/** `work` on a session of Open vSwitch's socket in `runDir`, closed whatever happens. */
export async function withOpenVswitch<T>(
  runDir: string,
  options: OvsdbOptions,
  work: (session: OvsdbSession) => Promise<T>,
): Promise<T> {
  const session = await openOvsdb(`${runDir}/db.sock`, ovsStartHint, options);
  try {
    return await work(session);
  } finally {
    session.close();
  }
}

/** All rows of each table named, with the columns given for it, in one request. */
export async function selectOvsRows(
  session: OvsdbSession,
  tables: Record<string, string[]>,
): Promise<Record<string, OvsdbRow[]>> {
  const entries = Object.entries(tables);
  const results = await session.transact(
    openVswitchDatabase,
    entries.map(([table, columns]) => ({ op: "select", table, where: [], columns })),
  );
  return Object.fromEntries(entries.map(([table], i) => [table, results[i]?.rows ?? []]));
}

/**
 * Commits `operations` in one transaction that also asks ovs-vswitchd to reconfigure
 * (next_cfg), then waits until it has (cur_cfg), as ovs-vsctl does: the links of new internal
 * ports exist only then.
 */
export async function applyToOpenVswitch(
  session: OvsdbSession,
  operations: readonly OvsdbOperation[],
  options: { comment: string; details?: string[] },
): Promise<void> {
  let nextCfg: unknown;
  try {
    const results = await session.transact(openVswitchDatabase, [
      { op: "comment", comment: options.comment },
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
        ...(options.details === undefined ? {} : { details: options.details }),
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
