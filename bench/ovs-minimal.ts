/**
 * The least a Node program can do for the OVS figure's work, timed beside op and ovs-vsctl
 * (bench/network.ts) to show what part of op's ratio is Node's and the machine's rather than
 * op's: read the host (one `ip` dump, one OVSDB select), write one LevelDB record, commit the
 * 20 bridges × 10 ports in one transaction and wait for ovs-vswitchd (cur_cfg), read the host
 * again, write and sync one more record. No file, validation, plan, lock, signature or output.
 *
 * Run as `node ovs-minimal.js PREFIX LEDGER_DIR`; it exits 1 if the bridges are not there.
 */
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { ClassicLevel } from "classic-level";

const [prefix = "opbm", ledgerDir = "/tmp/op-bench-minimal"] = process.argv.slice(2);
const bridges = 20;
const portsPerBridge = 10;

function ipDump(): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["-j", "-d", "-batch", "-"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("close", () =>
      resolve(
        out
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      ),
    );
    child.stdin.end("addr show\nroute show table all type unicast\n");
  });
}

type Result = { rows: { name: string; next_cfg?: number }[] };

/** JSON-RPC on db.sock: each reply is one JSON text; this cuts them at the closing bracket. */
function ovsdb(): Promise<{ transact(ops: unknown[]): Promise<Result[]>; close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection("/var/run/openvswitch/db.sock");
    const waiting = new Map<number, (result: Result[]) => void>();
    let buffer = "";
    let nextId = 0;
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      for (;;) {
        let depth = 0;
        let inString = false;
        let end = -1;
        for (let i = 0; i < buffer.length && end < 0; i++) {
          const c = buffer[i];
          if (inString) {
            if (c === "\\") i++;
            else if (c === '"') inString = false;
          } else if (c === '"') inString = true;
          else if (c === "{" || c === "[") depth++;
          else if ((c === "}" || c === "]") && --depth === 0) end = i;
        }
        if (end < 0) return;
        const message = JSON.parse(buffer.slice(0, end + 1));
        buffer = buffer.slice(end + 1);
        if (message.method === "echo") {
          socket.write(JSON.stringify({ id: message.id, result: message.params, error: null }));
        } else {
          waiting.get(message.id)?.(message.result);
        }
      }
    });
    socket.on("connect", () =>
      resolve({
        transact: (ops) =>
          new Promise((done) => {
            const id = nextId++;
            waiting.set(id, done);
            socket.write(
              JSON.stringify({ id, method: "transact", params: ["Open_vSwitch", ...ops] }),
            );
          }),
        close: () => socket.destroy(),
      }),
    );
  });
}

const select = [
  ["Bridge", ["_uuid", "name", "ports", "external_ids", "datapath_type"]],
  ["Port", ["_uuid", "name", "interfaces", "tag", "external_ids"]],
  ["Interface", ["_uuid", "name", "type", "mtu_request", "error", "external_ids"]],
].map(([table, columns]) => ({ op: "select", table, where: [], columns }));

const db = new ClassicLevel(ledgerDir, { valueEncoding: "utf8" });
const opened = db.open();
const [, session] = await Promise.all([ipDump(), ovsdb()]);
const [existing] = await session.transact(select);
const have = new Set(existing?.rows.map((row) => row.name));
const ops: unknown[] = [];
const added: unknown[] = [];
let n = 0;
for (let b = 0; b < bridges; b++) {
  const bridge = `${prefix}b${b}`;
  if (have.has(bridge)) continue;
  const ports: unknown[] = [];
  const names = [bridge, ...Array.from({ length: portsPerBridge }, (_, p) => `${bridge}p${p}`)];
  for (const name of names) {
    ops.push(
      { op: "insert", table: "Interface", "uuid-name": `i${n}`, row: { name, type: "internal" } },
      {
        op: "insert",
        table: "Port",
        "uuid-name": `p${n}`,
        row: { name, interfaces: ["named-uuid", `i${n}`] },
      },
    );
    ports.push(["named-uuid", `p${n++}`]);
  }
  ops.push({
    op: "insert",
    table: "Bridge",
    "uuid-name": `b${b}`,
    row: { name: bridge, datapath_type: "netdev", ports: ["set", ports] },
  });
  added.push(["named-uuid", `b${b}`]);
}
ops.push(
  {
    op: "mutate",
    table: "Open_vSwitch",
    where: [],
    mutations: [
      ["bridges", "insert", ["set", added]],
      ["next_cfg", "+=", 1],
    ],
  },
  { op: "select", table: "Open_vSwitch", where: [], columns: ["next_cfg"] },
);
await opened;
await db.put(`intent-${process.pid}`, JSON.stringify(ops));
const committed = await session.transact(ops);
const nextCfg = committed.at(-1)?.rows[0]?.next_cfg;
await session.transact([
  {
    op: "wait",
    table: "Open_vSwitch",
    where: [["cur_cfg", ">=", nextCfg]],
    columns: ["cur_cfg"],
    until: "!=",
    rows: [],
    timeout: 30_000,
  },
]);
const [links, [after]] = await Promise.all([ipDump(), session.transact(select)]);
const made = after?.rows.filter((row) => row.name.startsWith(prefix)).length;
await db.batch([{ type: "put", key: `ok-${process.pid}`, value: "ok" }], { sync: true });
await db.close();
session.close();
process.exit(made === bridges && links.length > 0 ? 0 : 1);
