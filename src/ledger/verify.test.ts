/**
 * Tampering with a real ledger's LevelDB the way an attacker with write access to the files
 * would, and checking that verify names the first bad record. Each case breaks one check.
 */

import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint, signCheckpoint } from "./checkpoint.js";
import { checkpointLogPath } from "./checkpoint-log.js";
import { canonicalJson, genesisHash } from "./hash.js";
import { Ledger, type RecordInput } from "./ledger.js";
import {
  BODY_AT,
  CHECKPOINT_RANGE,
  checkpointKey,
  decodeRecord,
  encodeHead,
  encodeRecord,
  HASH_AT,
  HEAD_KEY,
  RECORD_RANGE,
  recordKey,
} from "./store.js";
import { makeTempDir, removeTempDirs, withRawDb } from "./testing.js";
import type { LedgerDb } from "./verify.js";

afterEach(removeTempDirs);

const N = 20;

function step(n: number): RecordInput {
  return {
    run: "run-1",
    plugin: "network",
    action: "create",
    target: `br${n}`,
    changes: { mtu: 1500 + n, name: `bridge ${n}` },
    status: n % 2 === 0 ? "ok" : "intent",
  };
}

interface Built {
  dir: string;
  keyFile: string;
  /** Checkpoint texts by size. */
  checkpoints: Map<number, string>;
}

/** A closed ledger of `size` records with checkpoints after the given sizes. */
async function build(
  options: { origin?: string; size?: number; checkpointsAt?: number[] } = {},
): Promise<Built> {
  const root = await makeTempDir("verify");
  const dir = join(root, "ledger");
  const keyFile = join(root, "ledger.key");
  const ledger = await Ledger.open(dir, { keyFile, origin: options.origin ?? "op@a" });
  const checkpoints = new Map<number, string>();
  const at = new Set(options.checkpointsAt ?? []);
  for (let seq = 1; seq <= (options.size ?? N); seq++) {
    await ledger.append(step(seq));
    if (at.has(seq)) checkpoints.set(seq, await ledger.checkpoint());
  }
  await ledger.close();
  return { dir, keyFile, checkpoints };
}

async function verify(built: Built, trusted?: string, hashWorker = false) {
  const ledger = await Ledger.open(built.dir, { keyFile: built.keyFile, create: false });
  try {
    return await ledger.verify({ hashWorker, ...(trusted === undefined ? {} : { trusted }) });
  } finally {
    await ledger.close();
  }
}

async function rawRecord(db: LedgerDb, seq: number): Promise<Buffer> {
  const value = await db.get(recordKey(seq));
  if (value === undefined) throw new Error(`no record ${seq}`);
  return value;
}

/** Deletes records after `size`, as a careful attacker would: head and checkpoints follow. */
async function truncate(db: LedgerDb, size: number): Promise<void> {
  for await (const key of db.keys(RECORD_RANGE)) {
    if (key > recordKey(size)) await db.del(key);
  }
  for await (const key of db.keys(CHECKPOINT_RANGE)) {
    if (key > checkpointKey(size)) await db.del(key);
  }
  const last = await rawRecord(db, size);
  await db.put(HEAD_KEY, encodeHead(size, last.subarray(HASH_AT, HASH_AT + 32)));
}

/** Rewrites records from `from` on with changed bodies, fresh hashes, prevs and head. */
async function rewriteFrom(db: LedgerDb, from: number, size: number): Promise<void> {
  let prev: Buffer = Buffer.from((await rawRecord(db, from)).subarray(BODY_AT - 32, BODY_AT));
  for (let seq = from; seq <= size; seq++) {
    const body = JSON.parse(decodeRecord(await rawRecord(db, seq))?.body ?? "") as Record<
      string,
      unknown
    >;
    const { value, hash } = encodeRecord(
      prev,
      canonicalJson({ ...body, status: "ok", error: undefined }),
    );
    await db.put(recordKey(seq), value);
    prev = hash;
  }
  await db.put(HEAD_KEY, encodeHead(size, prev));
}

async function deleteCheckpoints(db: LedgerDb): Promise<void> {
  for await (const key of db.keys(CHECKPOINT_RANGE)) await db.del(key);
}

/**
 * What a careful attacker also does to the checkpoint log beside the ledger: keeps only the
 * checkpoints up to `size` (none: removes it).
 */
async function cutCheckpointLog(built: Built, size: number): Promise<void> {
  const kept = [...built.checkpoints].filter(([at]) => at <= size).map(([, text]) => text);
  const log = checkpointLogPath(built.dir);
  if (kept.length === 0) await rm(log);
  else await writeFile(log, kept.join(""));
}

describe("an untouched ledger", () => {
  it("verifies, with its stored and a trusted checkpoint", async () => {
    const built = await build({ checkpointsAt: [5, 10, N] });
    expect(await verify(built)).toEqual({
      ok: true,
      size: N,
      checkpoint: { size: N, ok: true },
      checkpoints: 3,
    });
    expect(await verify(built, built.checkpoints.get(10))).toEqual({
      ok: true,
      size: N,
      checkpoint: { size: 10, ok: true },
      checkpoints: 3,
    });
  });

  it("verifies when empty", async () => {
    const built = await build({ size: 0 });
    expect(await verify(built)).toEqual({ ok: true, size: 0, checkpoints: 0 });
  });
});

describe("drift and flapping records", () => {
  it("verify with the records around them, read back as written, and open or close no intent", async () => {
    const root = await makeTempDir("verify-drift");
    const built: Built = {
      dir: join(root, "ledger"),
      keyFile: join(root, "ledger.key"),
      checkpoints: new Map(),
    };
    const ledger = await Ledger.open(built.dir, { keyFile: built.keyFile, origin: "op@a" });
    await ledger.append(step(1));
    await ledger.append(step(2));
    const drift: RecordInput = {
      run: "check-1",
      plugin: "nftables",
      action: "modify",
      target: "inet/opst_t",
      changes: [{ path: "chains.input.policy", before: "accept", after: "drop" }],
      status: "drift",
    };
    const flapping: RecordInput = {
      run: "watch-1",
      plugin: "network",
      action: "modify",
      target: "br0",
      error: "reverted 5 times in 2 minutes: op stops enforcing it",
      status: "flapping",
    };
    await ledger.append(drift);
    await ledger.append(flapping);
    built.checkpoints.set(4, await ledger.checkpoint());
    // step(1) is an intent without an outcome; neither observation closes or opens one.
    expect((await ledger.pending()).map((intent) => intent.seq)).toEqual([1]);
    const read = [];
    for await (const record of ledger.records()) read.push(record);
    await ledger.close();
    expect(read.slice(2)).toMatchObject([drift, flapping]);
    expect(await verify(built)).toEqual({
      ok: true,
      size: 4,
      checkpoint: { size: 4, ok: true },
      checkpoints: 1,
    });
    expect(await verify(built, built.checkpoints.get(4))).toMatchObject({ ok: true, size: 4 });
  });
});

// Hashing runs inline for small ledgers and on a worker thread for large ones: both, here.
describe.each([
  ["inline", false],
  ["on a worker thread", true],
])("a changed byte in record k is named, hashing %s", (_where, hashWorker) => {
  const k = 7;
  // [position, what verify says]; positions past BODY_AT are in the canonical JSON body.
  const positions: [string, number, RegExp][] = [
    ["format version", 0, /unknown format version/],
    ["hash, first byte", HASH_AT, /hash does not match its content \(altered\)/],
    ["hash, last byte", HASH_AT + 31, /hash does not match its content/],
    ["leaf prefix", HASH_AT + 32, /hash does not match its content/],
    [
      "prev, first byte",
      BODY_AT - 32,
      /prev does not match record 6 \(removed, reordered or inserted\)/,
    ],
    ["prev, last byte", BODY_AT - 1, /prev does not match record 6/],
    ["body, first byte", BODY_AT, /hash does not match its content/],
    ["body, middle", BODY_AT + 40, /hash does not match its content/],
    ["body, last byte", -1, /hash does not match its content/],
  ];

  it.each(positions)("%s", async (_name, position, problem) => {
    const built = await build();
    await withRawDb(built.dir, async (db) => {
      const value = await rawRecord(db, k);
      const at = position < 0 ? value.length + position : position;
      value[at] = (value[at] ?? 0) ^ 0x01;
      await db.put(recordKey(k), value);
    });
    const report = await verify(built, undefined, hashWorker);
    expect(report).toMatchObject({ ok: false, firstBad: k, size: k - 1 });
    expect(report.problem).toMatch(new RegExp(`^record ${k}: `));
    expect(report.problem).toMatch(problem);
  });

  it("in the first record, whose prev is the origin's genesis", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) => {
      const value = await rawRecord(db, 1);
      value[BODY_AT - 5] = (value[BODY_AT - 5] ?? 0) ^ 0x80;
      await db.put(recordKey(1), value);
    });
    expect(await verify(built, undefined, hashWorker)).toMatchObject({
      ok: false,
      firstBad: 1,
      problem:
        "record 1: prev is not the genesis of origin op@a (spliced from another ledger, or altered)",
    });
  });
});

describe.each([
  ["inline", false],
  ["on a worker thread", true],
])("a ledger of several read batches, hashing %s", (_where, hashWorker) => {
  const size = 2500; // verify reads 1,000 records at a time

  async function buildLarge(): Promise<Built> {
    const root = await makeTempDir("verify-large");
    const built = {
      dir: join(root, "ledger"),
      keyFile: join(root, "ledger.key"),
      checkpoints: new Map(),
    };
    const ledger = await Ledger.open(built.dir, { keyFile: built.keyFile, origin: "op@a" });
    await ledger.appendMany(Array.from({ length: size }, (_, i) => step(i + 1)));
    built.checkpoints.set(size, await ledger.checkpoint());
    await ledger.close();
    return built;
  }

  async function flip(built: Built, seq: number, at: number): Promise<void> {
    await withRawDb(built.dir, async (db) => {
      const value = await rawRecord(db, seq);
      value[at] = (value[at] ?? 0) ^ 0x10;
      await db.put(recordKey(seq), value);
    });
  }

  it("verifies untouched", async () => {
    const built = await buildLarge();
    expect(await verify(built, built.checkpoints.get(size), hashWorker)).toMatchObject({
      ok: true,
      size,
    });
  });

  it("names a bad hash in a later batch before a broken link after it", async () => {
    const built = await buildLarge();
    await flip(built, 1700, BODY_AT + 3);
    await flip(built, 2300, BODY_AT - 1);
    expect(await verify(built, undefined, hashWorker)).toMatchObject({
      firstBad: 1700,
      size: 1699,
      problem: "record 1700: hash does not match its content (altered)",
    });
  });

  it("names a broken link before a bad hash after it", async () => {
    const built = await buildLarge();
    await flip(built, 1200, BODY_AT - 1);
    await flip(built, 2300, BODY_AT + 3);
    expect(await verify(built, undefined, hashWorker)).toMatchObject({
      firstBad: 1200,
      size: 1199,
      problem: "record 1200: prev does not match record 1199 (removed, reordered or inserted)",
    });
  });
});

describe("removed, reordered and inserted records", () => {
  it("a deleted record", async () => {
    const built = await build();
    await withRawDb(built.dir, (db) => db.del(recordKey(9)));
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 9,
      size: 8,
      problem: "record 9 missing",
    });
  });

  it("several deleted records", async () => {
    const built = await build();
    await withRawDb(built.dir, (db) =>
      db.batch([9, 10, 11].map((seq) => ({ type: "del", key: recordKey(seq) }))),
    );
    expect(await verify(built)).toMatchObject({ firstBad: 9, problem: "records 9 to 11 missing" });
  });

  it("two swapped records", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) => {
      const [a, b] = [await rawRecord(db, 12), await rawRecord(db, 13)];
      await db.batch([
        { type: "put", key: recordKey(12), value: b },
        { type: "put", key: recordKey(13), value: a },
      ]);
    });
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 12,
      problem: "record 12: prev does not match record 11 (removed, reordered or inserted)",
    });
  });

  it("a record added past the head", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) => {
      const last = await rawRecord(db, N);
      const { value } = encodeRecord(
        last.subarray(HASH_AT, HASH_AT + 32),
        canonicalJson({ seq: N + 1 }),
      );
      await db.put(recordKey(N + 1), value);
    });
    expect(await verify(built)).toMatchObject({
      firstBad: N + 1,
      problem: `record ${N + 1} is beyond the head (${N}) (inserted)`,
    });
  });

  it("a stray key among the records", async () => {
    const built = await build();
    await withRawDb(built.dir, (db) => db.put("r!0000000000000005x", Buffer.alloc(80)));
    expect(await verify(built)).toMatchObject({
      firstBad: 6,
      problem: "record 6: stray key r!0000000000000005x (inserted)",
    });
  });

  it("a changed head pointer", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) => db.put(HEAD_KEY, encodeHead(N, Buffer.alloc(32, 7))));
    expect(await verify(built)).toMatchObject({
      firstBad: N,
      problem: `the head's hash does not match record ${N} (altered)`,
    });
  });
});

describe("a truncated tail", () => {
  it("with the head left behind, is caught by the head", async () => {
    const built = await build();
    await withRawDb(built.dir, (db) =>
      db.batch([19, 20].map((seq) => ({ type: "del", key: recordKey(seq) }))),
    );
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 19,
      problem: "ledger has 18 records but its head says 20 (truncated)",
    });
  });

  it("with a stored checkpoint past the cut, is caught by that checkpoint", async () => {
    const built = await build({ checkpointsAt: [N] });
    await withRawDb(built.dir, async (db) => {
      await db.batch([18, 19, 20].map((seq) => ({ type: "del", key: recordKey(seq) })));
      const last = await rawRecord(db, 17);
      await db.put(HEAD_KEY, encodeHead(17, last.subarray(HASH_AT, HASH_AT + 32)));
    });
    expect(await verify(built)).toMatchObject({
      firstBad: 18,
      problem: `ledger has 17 records but checkpoint at size ${N} exists (truncated)`,
    });
  });

  it("with head and checkpoints cut, is caught by the checkpoint log beside the ledger", async () => {
    const built = await build({ checkpointsAt: [10, N] });
    await withRawDb(built.dir, (db) => truncate(db, 15));
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 16,
      problem: `ledger has 15 records but the checkpoint log's checkpoint at size ${N} exists (records lost)`,
    });
  });

  it("with head, checkpoints and the checkpoint log cut too, passes alone and is caught by a trusted checkpoint", async () => {
    const built = await build({ checkpointsAt: [10, N] });
    await withRawDb(built.dir, (db) => truncate(db, 15));
    await cutCheckpointLog(built, 15);
    // What a bare chain cannot see:
    expect(await verify(built)).toMatchObject({
      ok: true,
      size: 15,
      checkpoint: { size: 10, ok: true },
    });
    expect(await verify(built, built.checkpoints.get(N))).toMatchObject({
      ok: false,
      firstBad: 16,
      problem: `ledger has 15 records but trusted checkpoint says ${N} (truncated)`,
      checkpoint: { size: N, ok: false },
    });
  });
});

describe("a chain rewritten from record k with valid hashes and head", () => {
  it("is caught by the first stored checkpoint it passes, narrowed by the one before", async () => {
    const built = await build({ checkpointsAt: [5, 10, 15] });
    await withRawDb(built.dir, (db) => rewriteFrom(db, 8, N));
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 6,
      problem:
        "checkpoint at size 10 does not match the chain: records up to 10 were rewritten after record 5, which an earlier checkpoint confirms",
      checkpoint: { size: 10, ok: false },
    });
  });

  it("from record 1, is caught by the first checkpoint", async () => {
    const built = await build({ checkpointsAt: [N] });
    await withRawDb(built.dir, (db) => rewriteFrom(db, 1, N));
    expect(await verify(built)).toMatchObject({
      firstBad: 1,
      problem: `checkpoint at size ${N} does not match the chain: records up to ${N} were rewritten`,
    });
  });

  it("with the stored checkpoints deleted, is caught by the checkpoint log", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, async (db) => {
      await rewriteFrom(db, 4, N);
      await deleteCheckpoints(db);
    });
    expect(await verify(built)).toMatchObject({
      ok: false,
      problem:
        "the checkpoint log's checkpoint at size 10 does not match the chain: records up to 10 were rewritten",
    });
  });

  it("with the stored checkpoints deleted, is caught by the log's checkpoint at the last record", async () => {
    const built = await build({ checkpointsAt: [N] });
    await withRawDb(built.dir, async (db) => {
      await rewriteFrom(db, 4, N);
      await deleteCheckpoints(db);
    });
    expect(await verify(built)).toEqual({
      ok: false,
      size: N,
      firstBad: 1,
      problem: `the checkpoint log's checkpoint at size ${N} does not match the chain: records up to ${N} were rewritten`,
      checkpoints: 0,
    });
  });

  it("with the stored checkpoints and the checkpoint log deleted, passes alone and is caught by a trusted checkpoint", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, async (db) => {
      await rewriteFrom(db, 4, N);
      await deleteCheckpoints(db);
    });
    await cutCheckpointLog(built, 0);
    expect(await verify(built)).toMatchObject({ ok: true, size: N, checkpoints: 0 });
    expect(await verify(built, built.checkpoints.get(10))).toMatchObject({
      ok: false,
      firstBad: 1,
      problem: "trusted checkpoint does not match the chain: records up to 10 were rewritten",
      checkpoint: { size: 10, ok: false },
    });
  });

  it("after the last checkpoint, is not caught (the tail is unprotected until the next one)", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, (db) => rewriteFrom(db, 11, N));
    expect(await verify(built)).toMatchObject({ ok: true, size: N });
  });
});

describe("checkpoints linked into the chain", () => {
  it("a deleted checkpoint breaks the link of the record after it, even with the log gone", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    await withRawDb(built.dir, (db) => db.del(checkpointKey(10)));
    await cutCheckpointLog(built, 0);
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 11,
      problem: "record 11: prev does not match record 10 (removed, reordered or inserted)",
    });
  });

  it("every checkpoint deleted is caught by the checkpoint log", async () => {
    const built = await build({ checkpointsAt: [5, 10, N] });
    await withRawDb(built.dir, deleteCheckpoints);
    expect(await verify(built)).toMatchObject({ ok: false });
    expect((await verify(built)).problem).toMatch(/record 6: prev does not match record 5/);
  });
});

describe("forged checkpoints", () => {
  const otherKey = () => {
    const { secretKey, publicKey } = ed25519.keygen();
    return { secretKey, publicKey };
  };

  it("a stored checkpoint signed with another key is rejected", async () => {
    const built = await build({ checkpointsAt: [10] });
    const genuine = parseCheckpoint(built.checkpoints.get(10) ?? "");
    const forged = signCheckpoint({ ...genuine }, otherKey());
    await withRawDb(built.dir, (db) => db.put(checkpointKey(10), Buffer.from(forged)));
    expect(await verify(built)).toMatchObject({
      ok: false,
      problem:
        "checkpoint at size 10: signature does not verify with this ledger's key (forged, or signed with another key)",
    });
  });

  it("a stored checkpoint with a changed root is rejected", async () => {
    const built = await build({ checkpointsAt: [10] });
    const text = (built.checkpoints.get(10) ?? "").replace(
      /root (.)/,
      (_m, c: string) => `root ${c === "0" ? "1" : "0"}`,
    );
    await withRawDb(built.dir, (db) => db.put(checkpointKey(10), Buffer.from(text)));
    expect((await verify(built)).problem).toMatch(
      /^checkpoint at size 10: signature does not verify/,
    );
  });

  it("a stored checkpoint moved to another size is rejected", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, (db) =>
      db.put(checkpointKey(12), Buffer.from(built.checkpoints.get(10) ?? "")),
    );
    expect((await verify(built)).problem).toBe(
      "checkpoint at size 12 says size 10 (moved, or altered)",
    );
  });

  it("an unreadable stored checkpoint is reported", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, (db) => db.put(checkpointKey(10), Buffer.from("garbage")));
    expect((await verify(built)).problem).toMatch(
      /^checkpoint at size 10 is unreadable \(not an op ledger checkpoint/,
    );
  });

  it("a trusted checkpoint signed with another key is rejected", async () => {
    const built = await build({ checkpointsAt: [10] });
    const forged = signCheckpoint(
      { ...parseCheckpoint(built.checkpoints.get(10) ?? "") },
      otherKey(),
    );
    expect(await verify(built, forged)).toMatchObject({
      ok: false,
      problem:
        "trusted checkpoint: signature does not verify with this ledger's key (forged, or signed with another key)",
      checkpoint: { size: 10, ok: false },
    });
  });

  it("a trusted checkpoint that is not a checkpoint is a usage error, not a verdict", async () => {
    const built = await build();
    const error = await verify(built, "hello\n").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("invalid-file");
  });

  it("checkpoints cannot be checked when the key files are gone", async () => {
    const built = await build({ checkpointsAt: [10] });
    await rm(built.keyFile);
    await rm(`${built.keyFile}.pub`);
    expect((await verify(built)).problem).toMatch(
      /^checkpoint at size 10: cannot check its signature: no key at /,
    );
  });
});

describe("another origin's ledger", () => {
  it("spliced in whole is caught at record 1", async () => {
    const ours = await build({ origin: "op@a" });
    const theirs = await build({ origin: "op@b" });
    const records = await withRawDb(theirs.dir, (db) => db.iterator(RECORD_RANGE).all());
    const head = await withRawDb(theirs.dir, (db) => db.get(HEAD_KEY));
    await withRawDb(ours.dir, async (db) => {
      await db.batch(records.map(([key, value]) => ({ type: "put", key, value })));
      if (head !== undefined) await db.put(HEAD_KEY, head);
    });
    expect(await verify(ours)).toMatchObject({
      ok: false,
      firstBad: 1,
      problem:
        "record 1: prev is not the genesis of origin op@a (spliced from another ledger, or altered)",
    });
  });

  it("spliced in after record k is caught at k", async () => {
    const ours = await build({ origin: "op@a" });
    const theirs = await build({ origin: "op@b" });
    const records = await withRawDb(theirs.dir, (db) =>
      db.iterator({ gte: recordKey(11), lt: RECORD_RANGE.lt }).all(),
    );
    await withRawDb(ours.dir, (db) =>
      db.batch(records.map(([key, value]) => ({ type: "put", key, value }))),
    );
    expect(await verify(ours)).toMatchObject({
      firstBad: 11,
      problem: "record 11: prev does not match record 10 (removed, reordered or inserted)",
    });
  });

  it("a trusted checkpoint of another origin, even signed with this key, is rejected", async () => {
    const ours = await build({ origin: "op@a", checkpointsAt: [10] });
    const theirs = await build({ origin: "op@b", checkpointsAt: [10] });
    // Their checkpoint, re-signed with our key (op no longer opens a ledger with another key).
    const secretKey = Buffer.from((await readFile(ours.keyFile, "utf8")).trim(), "base64");
    const foreign = signCheckpoint(
      { ...parseCheckpoint(theirs.checkpoints.get(10) ?? "") },
      { secretKey, publicKey: ed25519.getPublicKey(secretKey) },
    );
    expect(await verify(ours, foreign)).toMatchObject({
      ok: false,
      problem: "trusted checkpoint is for origin op@b, not op@a",
    });
  });
});

describe("the checkpoint log", () => {
  it("an entry followed by blank lines is still the stored checkpoint", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    await writeFile(
      checkpointLogPath(built.dir),
      `${[...built.checkpoints.values()].join("")}\n\n`,
    );
    expect(await verify(built)).toEqual({
      ok: true,
      size: N,
      checkpoint: { size: 10, ok: true },
      checkpoints: 2,
    });
  });

  it("an entry altered so that it is no checkpoint is named, even the first", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    const [first, second] = [built.checkpoints.get(5) ?? "", built.checkpoints.get(10) ?? ""];
    const log = checkpointLogPath(built.dir);
    await writeFile(log, first.replace("op ledger checkpoint", "op ledger checkpoinx") + second);
    expect(await verify(built)).toMatchObject({
      ok: false,
      problem:
        'the checkpoint log\'s entry 1 is unreadable (not an op ledger checkpoint: the first line must be "op ledger checkpoint") (altered)',
    });
    await writeFile(log, first + second.replace("size 10", "size ten"));
    expect((await verify(built)).problem).toBe(
      'the checkpoint log\'s entry 2 is unreadable (not an op ledger checkpoint: size "ten" is not a record count) (altered)',
    );
  });
});

describe("what else verify names", () => {
  it("a record cut shorter than its header", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) => db.put(recordKey(7), Buffer.alloc(BODY_AT - 1, 1)));
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 7,
      size: 6,
      problem: "record 7: value too short (altered)",
    });
  });

  it("a record cut to its header, by its hash", async () => {
    const built = await build();
    await withRawDb(built.dir, async (db) =>
      db.put(recordKey(7), (await rawRecord(db, 7)).subarray(0, BODY_AT)),
    );
    expect(await verify(built)).toMatchObject({
      firstBad: 7,
      problem: "record 7: hash does not match its content (altered)",
    });
  });

  it("a record after a checkpoint cut to its header, by its hash", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, async (db) =>
      db.put(recordKey(11), (await rawRecord(db, 11)).subarray(0, BODY_AT)),
    );
    expect(await verify(built)).toMatchObject({
      firstBad: 11,
      problem: "record 11: hash does not match its content (altered)",
    });
  });

  it("nothing, for a ledger without checkpoints whose key files are gone", async () => {
    const built = await build();
    await rm(built.keyFile);
    await rm(`${built.keyFile}.pub`);
    expect(await verify(built)).toEqual({ ok: true, size: N, checkpoints: 0 });
  });

  it("a replaced checkpoint before a record altered after it, first", async () => {
    const built = await build({ checkpointsAt: [10] });
    const secretKey = Buffer.from((await readFile(built.keyFile, "utf8")).trim(), "base64");
    const genuine = parseCheckpoint(built.checkpoints.get(10) ?? "");
    const other = signCheckpoint(
      { ...genuine, time: "2020-01-01T00:00:00.000Z" },
      { secretKey, publicKey: ed25519.getPublicKey(secretKey) },
    );
    await withRawDb(built.dir, async (db) => {
      await db.put(checkpointKey(10), Buffer.from(other));
      await db.put(recordKey(15), Buffer.alloc(10));
    });
    expect(await verify(built)).toMatchObject({
      ok: false,
      firstBad: 11,
      problem: expect.stringMatching(
        /^record 11: prev does not match record 10 and its checkpoint/,
      ),
    });
  });

  it("a missing or unreadable head pointer", async () => {
    const built = await build();
    await withRawDb(built.dir, (db) => db.put(HEAD_KEY, Buffer.from("twenty")));
    expect(await verify(built)).toEqual({
      ok: false,
      size: N,
      problem: "the head pointer is unreadable (altered)",
      checkpoints: 0,
    });
    await withRawDb(built.dir, (db) => db.del(HEAD_KEY));
    expect(await verify(built)).toEqual({
      ok: false,
      size: N,
      problem: "the head pointer is missing (altered)",
      checkpoints: 0,
    });
  });

  it("a head pointer on an empty ledger that holds another hash than the genesis", async () => {
    const built = await build({ size: 0 });
    await withRawDb(built.dir, (db) => db.put(HEAD_KEY, encodeHead(0, Buffer.alloc(32, 7))));
    expect(await verify(built)).toEqual({
      ok: false,
      size: 0,
      problem: "the head's hash does not match record 0 (altered)",
      checkpoints: 0,
    });
    await withRawDb(built.dir, (db) => db.put(HEAD_KEY, encodeHead(0, genesisHash("op@a"))));
    expect(await verify(built)).toEqual({ ok: true, size: 0, checkpoints: 0 });
  });

  it("a stored checkpoint replaced by another the key signed over the same record", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    const secretKey = Buffer.from((await readFile(built.keyFile, "utf8")).trim(), "base64");
    const genuine = parseCheckpoint(built.checkpoints.get(10) ?? "");
    const other = signCheckpoint(
      { ...genuine, time: "2020-01-01T00:00:00.000Z" },
      { secretKey, publicKey: ed25519.getPublicKey(secretKey) },
    );
    await withRawDb(built.dir, (db) => db.put(checkpointKey(10), Buffer.from(other)));
    expect(await verify(built)).toEqual({
      ok: false,
      size: N,
      firstBad: 11,
      problem:
        "record 11: prev does not match record 10 and its checkpoint (the checkpoint was replaced, or records altered)",
      checkpoint: { size: 10, ok: true },
      checkpoints: 2,
    });
  });

  it("the first of two replaced checkpoints", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    const secretKey = Buffer.from((await readFile(built.keyFile, "utf8")).trim(), "base64");
    const key = { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
    await withRawDb(built.dir, async (db) => {
      for (const size of [5, 10]) {
        const genuine = parseCheckpoint(built.checkpoints.get(size) ?? "");
        const other = signCheckpoint({ ...genuine, time: "2020-01-01T00:00:00.000Z" }, key);
        await db.put(checkpointKey(size), Buffer.from(other));
      }
    });
    expect(await verify(built)).toMatchObject({ ok: false, size: N, firstBad: 6 });
  });

  it("a record cut short right after a checkpoint, as too short", async () => {
    const built = await build({ checkpointsAt: [10] });
    await withRawDb(built.dir, async (db) => db.put(recordKey(11), Buffer.alloc(40, 1)));
    expect(await verify(built)).toEqual({
      ok: false,
      size: 10,
      firstBad: 11,
      problem: "record 11: value too short (altered)",
      checkpoints: 1,
    });
  });

  it("a last checkpoint deleted where no record follows it, by the checkpoint log", async () => {
    const built = await build({ checkpointsAt: [5, N] });
    await withRawDb(built.dir, (db) => db.del(checkpointKey(N)));
    expect(await verify(built)).toEqual({
      ok: false,
      size: N,
      problem: `the checkpoint log's checkpoint at size ${N} is missing from the ledger (checkpoints deleted or lost)`,
      checkpoint: { size: 5, ok: true },
      checkpoints: 1,
    });
  });

  it("a rewrite a trusted checkpoint catches is narrowed by the stored one before it", async () => {
    const built = await build({ checkpointsAt: [5, 10] });
    await withRawDb(built.dir, async (db) => {
      await db.del(checkpointKey(10));
      await rewriteFrom(db, 8, N);
    });
    await cutCheckpointLog(built, 5);
    expect(await verify(built)).toMatchObject({ ok: true, size: N });
    expect(await verify(built, built.checkpoints.get(10))).toEqual({
      ok: false,
      size: N,
      firstBad: 6,
      problem:
        "trusted checkpoint does not match the chain: records up to 10 were rewritten after record 5, which an earlier checkpoint confirms",
      checkpoint: { size: 10, ok: false },
      checkpoints: 1,
    });
  });

  it("a trusted checkpoint of size 0 (an empty ledger's) against the genesis", async () => {
    const built = await build({ checkpointsAt: [5] });
    const secretKey = Buffer.from((await readFile(built.keyFile, "utf8")).trim(), "base64");
    const key = { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
    const genesis = parseCheckpoint(built.checkpoints.get(5) ?? "");
    const fields = { ...genesis, size: 0, root: genesisHash("op@a").toString("hex") };
    expect(await verify(built, signCheckpoint(fields, key))).toMatchObject({
      ok: true,
      checkpoint: { size: 0, ok: true },
    });
    const wrong = signCheckpoint({ ...fields, root: genesisHash("op@b").toString("hex") }, key);
    expect(await verify(built, wrong)).toMatchObject({
      ok: false,
      firstBad: 1,
      problem: "trusted checkpoint does not match the chain: records up to 0 were rewritten",
    });
  });
});
