/**
 * The one module that talks to OVSDB (src/host/ovs.ts models Open vSwitch on it): JSON-RPC (RFC 7047) over ovsdb-server's unix socket.
 * Reading or changing Open vSwitch through `ovs-vsctl` costs a process start and a fetch of
 * the whole database per call; a run needs three such calls (read, transaction, verify), and
 * they were most of op's time on OVS. Here each is one request on a socket.
 *
 * A session is one connection: open, a few requests, close. Failures become OpErrors that
 * carry OVSDB's own words; a socket that is not there says how to start Open vSwitch.
 */
import type { Socket } from "node:net";
import { OpError } from "./errors.js";
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
  /**
   * A `monitor` (RFC 7047 §4.1.5) of the columns named of each table: resolves with the rows as
   * they are now; each later change comes to `onUpdate` as an `update` notification's table
   * updates, until the session closes, which `onLost` hears (once) unless `close()` ended it.
   */
  monitor(
    database: string,
    tables: Readonly<Record<string, { columns?: readonly string[] }>>,
    handlers: { onUpdate: (updates: OvsdbTableUpdates) => void; onLost: (error: OpError) => void },
  ): Promise<OvsdbTableUpdates>;
  close(): void;
}

/** A row's change: `old` and `new` hold the columns that changed (absent: inserted / deleted). */
export interface OvsdbRowUpdate {
  old?: Record<string, unknown>;
  new?: Record<string, unknown>;
}
/** Table name → row uuid → its change (RFC 7047 §4.1.6 table-updates). */
export type OvsdbTableUpdates = Record<string, Record<string, OvsdbRowUpdate>>;

export interface OvsdbOptions {
  /** How long a connection or request may take before it fails (default 10 s). */
  timeoutMs?: number;
  /** When given, replaces `timeoutMs` and every request's own (OP_OVSDB_TIMEOUT, src/host/settings.ts). */
  overrideMs?: number;
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
  const override = options.overrideMs ?? 0;
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
    let closing = false;
    /** Monitor id (a number, sent as the monitor's json-value) → its handlers. */
    const monitors = new Map<
      number,
      { onUpdate: (updates: OvsdbTableUpdates) => void; onLost: (error: OpError) => void }
    >();
    const loseMonitors = (error: OpError) => {
      const lostOnes = [...monitors.values()];
      monitors.clear();
      if (!closing) for (const monitor of lostOnes) monitor.onLost(error);
    };

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
      else {
        failAll(sentAndLost(unavailable(why)));
        loseMonitors(unavailable(why));
      }
    });
    // Requests already sent may have been committed: their outcome is unknown.
    socket.on("close", () => {
      failAll(sentAndLost(unavailable("the connection closed")));
      loseMonitors(unavailable("the connection closed"));
    });
    socket.on("data", (chunk: string) => {
      let messages: Message[];
      try {
        messages = splitter(chunk) as Message[];
      } catch (error) {
        const garbled = unavailable(`it sent something that is not JSON (${String(error)})`);
        failAll(garbled);
        loseMonitors(garbled);
        socket.destroy();
        return;
      }
      for (const message of messages) {
        // The server's keep-alive: answered, or it drops the connection.
        if (message.method === "echo") {
          socket.write(JSON.stringify({ id: message.id, result: message.params, error: null }));
          continue;
        }
        if (message.method === "update") {
          const [monitorId, updates] = Array.isArray(message.params) ? message.params : [];
          const monitor = typeof monitorId === "number" ? monitors.get(monitorId) : undefined;
          if (monitor && updates && typeof updates === "object")
            monitor.onUpdate(updates as OvsdbTableUpdates);
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
      async monitor(database, tables, handlers) {
        const monitorId = nextId++;
        monitors.set(monitorId, handlers);
        try {
          return (await request(
            "monitor",
            [database, monitorId, tables],
            timeoutMs,
          )) as OvsdbTableUpdates;
        } catch (error) {
          monitors.delete(monitorId);
          throw error;
        }
      },
      close() {
        closing = true;
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
