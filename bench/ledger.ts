/**
 * Ledger benchmark: appends (with a signed, synced checkpoint per run of 1,000), verify of a
 * 1,000,000-record ledger, and the SHA-256 choice. Each figure is measured beside its floor, the
 * same work done with bare LevelDB (or the other hash library), alternating the two so drift on
 * a noisy machine hits both alike.
 *
 * Alone: `node dist/bench/ledger.js [hash] [append] [verify]` (after `tsc -p tsconfig.build.json`).
 */
import { hash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { Level } from "level";
import { Ledger, type RecordInput } from "../src/ledger/index.js";
import type { Figure } from "./measure.js";

const APPENDS = 100_000;
const RUN = 1_000;
const VERIFY_RECORDS = 1_000_000;
const BULK = 10_000;

function input(i: number): RecordInput {
  return {
    run: `01JD${String(Math.floor(i / RUN)).padStart(22, "0")}`,
    plugin: i % 3 === 0 ? "nftables" : i % 3 === 1 ? "network" : "lxc",
    action: "modify",
    target: `inet/op_bench/chain/input-${i % 97}`,
    changes: [{ path: "mtu", before: 1500, after: 9000 + (i % 7) }],
    status: i % 2 === 0 ? "intent" : "ok",
  };
}

async function tempDir(purpose: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `op-bench-ledger-${purpose}-`));
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Times `op` and `floor` alternately `rounds` times (after one warm-up each); medians in ms. */
async function alternate(
  rounds: number,
  op: () => Promise<unknown>,
  floor: () => Promise<unknown>,
): Promise<{ op: number; floor: number }> {
  await op();
  await floor();
  const ops: number[] = [];
  const floors: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let start = process.hrtime.bigint();
    await floor();
    floors.push(elapsedMs(start));
    start = process.hrtime.bigint();
    await op();
    ops.push(elapsedMs(start));
  }
  return { op: median(ops), floor: median(floors) };
}

/** op: 100 runs of 1,000 appends, each run closed by checkpoint() (sign + synced write). */
async function appendRuns(count: number): Promise<void> {
  const dir = await tempDir("append");
  try {
    const ledger = await Ledger.open(join(dir, "db"), { keyFile: join(dir, "ledger.key") });
    for (let i = 0; i < count; i++) {
      await ledger.append(input(i));
      if ((i + 1) % RUN === 0) await ledger.checkpoint();
    }
    await ledger.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Floor: LevelDB alone writing values of the same size, one batch (record + head) per record. */
async function rawAppends(count: number, valueBytes: number): Promise<void> {
  const dir = await tempDir("raw");
  try {
    const db = new Level<string, Buffer>(join(dir, "db"), { valueEncoding: "buffer" });
    await db.open();
    const value = Buffer.alloc(valueBytes, 0x61);
    const head = Buffer.alloc(40, 0x62);
    for (let i = 0; i < count; i++) {
      await db.batch([
        { type: "put", key: `r!${String(i + 1).padStart(16, "0")}`, value },
        { type: "put", key: "m!head", value: head },
      ]);
      if ((i + 1) % RUN === 0) {
        await db.put(`c!${String(i + 1).padStart(16, "0")}`, head, { sync: true });
      }
    }
    await db.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The stored size of a typical record value, for the floor's values. */
async function typicalValueBytes(): Promise<number> {
  const dir = await tempDir("size");
  try {
    const ledger = await Ledger.open(join(dir, "db"), { keyFile: join(dir, "ledger.key") });
    await ledger.append(input(1));
    await ledger.close();
    const db = new Level<string, Buffer>(join(dir, "db"), { valueEncoding: "buffer" });
    await db.open();
    const value = await db.get(`r!${"1".padStart(16, "0")}`);
    await db.close();
    if (value === undefined) throw new Error("the record just appended is not stored");
    return value.length;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchAppend(): Promise<Figure> {
  const valueBytes = await typicalValueBytes();
  const { op, floor } = await alternate(
    3,
    () => appendRuns(APPENDS),
    () => rawAppends(APPENDS, valueBytes),
  );
  return {
    name: `ledger append, ${APPENDS.toLocaleString("en")} records in runs of ${RUN.toLocaleString("en")} (checkpoint + sync per run)`,
    value: op / 1000,
    unit: "s",
    floor: floor / 1000,
    floorLabel: `LevelDB alone, one ${valueBytes}-byte batch per record, sync per ${RUN}`,
    target: { absolute: 10 },
  };
}

/** Bare iteration over the same records: the same iterator API and batches, no checks. */
async function bareIteration(dir: string): Promise<number> {
  const db = new Level<string, Buffer>(dir, { valueEncoding: "buffer" });
  await db.open();
  let count = 0;
  try {
    const iterator = db.iterator({ gte: "r!0", lt: "r!:", highWaterMarkBytes: 1 << 20 });
    for (;;) {
      const entries = await iterator.nextv(1000);
      if (entries.length === 0) break;
      count += entries.length;
    }
    await iterator.close();
  } finally {
    await db.close();
  }
  return count;
}

async function benchVerify(): Promise<Figure> {
  const root = await tempDir("verify");
  const dir = join(root, "db");
  const keyFile = join(root, "ledger.key");
  try {
    const ledger = await Ledger.open(dir, { keyFile });
    for (let i = 0; i < VERIFY_RECORDS; i += BULK) {
      await ledger.appendMany(Array.from({ length: BULK }, (_, j) => input(i + j)));
    }
    await ledger.checkpoint();
    await ledger.close();
    const verify = async () => {
      const reader = await Ledger.open(dir, { keyFile, create: false });
      const report = await reader.verify();
      await reader.close();
      if (!report.ok || report.size !== VERIFY_RECORDS) {
        throw new Error(`verify failed on a valid ledger: ${JSON.stringify(report)}`);
      }
    };
    const bare = async () => {
      const count = await bareIteration(dir);
      if (count !== VERIFY_RECORDS) throw new Error(`bare iteration saw ${count} records`);
    };
    const { op, floor } = await alternate(3, verify, bare);
    return {
      name: `ledger verify, ${VERIFY_RECORDS.toLocaleString("en")} records`,
      value: op / 1000,
      unit: "s",
      floor: floor / 1000,
      floorLabel: "bare LevelDB iteration of the same keys and values (nextv, no hashing)",
      target: { ratio: 1.5 },
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Verify's hash-and-compare step over record-sized inputs, node:crypto vs @noble/hashes. */
async function benchHash(): Promise<Figure> {
  const count = 1_000_000;
  const inputs = Array.from({ length: 1000 }, (_, i) => Buffer.alloc(300 + (i % 64), i & 0xff));
  const expected = inputs.map((data) => hash("sha256", data, "buffer"));
  const run = (digest: (data: Buffer, want: Buffer) => boolean) => async () => {
    let good = 0;
    for (let i = 0; i < count; i++) {
      const k = i % inputs.length;
      if (digest(inputs[k] as Buffer, expected[k] as Buffer)) good++;
    }
    if (good !== count) throw new Error("a hash did not match");
  };
  const node = run((data, want) => {
    const digest = hash("sha256", data, "latin1");
    for (let i = 0; i < 32; i++) if (digest.charCodeAt(i) !== want[i]) return false;
    return true;
  });
  const noble = run((data, want) => Buffer.from(nobleSha256(data)).equals(want));
  const { op, floor } = await alternate(3, node, noble);
  return {
    name: `SHA-256 of ${count.toLocaleString("en")} ~330-byte records, node:crypto (as verify uses it)`,
    value: op,
    unit: "ms",
    floor,
    floorLabel: "@noble/hashes sha256",
    target: {},
  };
}

const parts: Record<string, () => Promise<Figure>> = {
  hash: benchHash,
  append: benchAppend,
  verify: benchVerify,
};

export async function benchLedger(only: readonly string[] = Object.keys(parts)): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const name of only) {
    const part = parts[name];
    if (part === undefined)
      throw new Error(`unknown part ${name}; known: ${Object.keys(parts).join(", ")}`);
    figures.push(await part());
  }
  return figures;
}

// Alone: `node dist/bench/ledger.js [hash] [append] [verify]`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.slice(2);
  for (const figure of await benchLedger(only.length > 0 ? only : undefined)) {
    const ratio = (figure.value / figure.floor).toFixed(2);
    process.stdout.write(
      `${figure.name}: ${figure.value.toFixed(2)} ${figure.unit}; floor ${figure.floor.toFixed(2)} ${figure.unit} (${figure.floorLabel}); ratio ${ratio}\n`,
    );
  }
}
