/**
 * The tail check's tolerances: a crash between a checkpoint's two writes (ledger, then the
 * checkpoint log) is completed, not refused; a ledger from before the checkpoint log starts
 * one. Everything else it refuses is in test/ledger-tamper.system.test.ts, against real applies.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint, signCheckpoint } from "./checkpoint.js";
import { checkpointLogPath } from "./checkpoint-log.js";
import { getPublicKey, keygen } from "./ed25519.js";
import { genesisHash } from "./hash.js";
import { Ledger, type RecordInput } from "./ledger.js";
import {
  BODY_AT,
  checkpointKey,
  encodeHead,
  FORMAT_KEY,
  HASH_AT,
  HEAD_KEY,
  LEAF_AT,
  LINKED_KEY,
  PREV_AT,
  recordKey,
} from "./store.js";
import { makeTempDir, removeTempDirs, withRawDb } from "./testing.js";
import type { LedgerDb } from "./verify.js";

afterEach(removeTempDirs);

const step = (n: number): RecordInput => ({
  run: "run-1",
  plugin: "nftables",
  action: "modify",
  target: `t${n}`,
  status: "ok",
});

async function signedLedger() {
  const root = await makeTempDir("tail");
  const dir = join(root, "ledger");
  const keyFile = join(root, "ledger.key");
  const ledger = await Ledger.open(dir, { keyFile });
  const texts: string[] = [];
  for (let n = 1; n <= 3; n++) {
    await ledger.append(step(n));
    texts.push(await ledger.checkpoint());
  }
  await ledger.close();
  return { dir, keyFile, texts, log: checkpointLogPath(dir) };
}

describe("the tail check", () => {
  it("completes a checkpoint log one checkpoint behind (a crash between the two writes)", async () => {
    const { dir, keyFile, texts, log } = await signedLedger();
    expect(await readFile(log, "utf8")).toBe(texts.join(""));
    await writeFile(log, texts.slice(0, 2).join(""));
    const ledger = await Ledger.open(dir, { keyFile });
    await ledger.append(step(4));
    await ledger.close();
    expect(await readFile(log, "utf8")).toBe(texts.join(""));
  });

  it("refuses a checkpoint log two checkpoints behind", async () => {
    const { dir, keyFile, texts, log } = await signedLedger();
    await writeFile(log, texts.slice(0, 1).join(""));
    await expect(Ledger.open(dir, { keyFile })).rejects.toMatchObject({
      code: "ledger-corrupt",
      message: expect.stringMatching(/last checkpoint \(size 3\) is not in its checkpoint log/),
    });
  });

  it("starts the checkpoint log of a ledger written before it existed (format 1)", async () => {
    const { dir, keyFile, texts } = await formatOneLedger(3, [3]);
    const upgraded = await Ledger.open(dir, { keyFile });
    await upgraded.append(step(4));
    expect(await upgraded.verify()).toMatchObject({ ok: true, size: 4, checkpoints: 1 });
    await upgraded.close();
    expect(await readFile(checkpointLogPath(dir), "utf8")).toBe(texts.join(""));
  });

  it("walks the unlinked checkpoints of a format-1 ledger as unlinked", async () => {
    const { dir, keyFile, texts } = await formatOneLedger(4, [2, 3]);
    const upgraded = await Ledger.open(dir, { keyFile });
    await upgraded.append(step(5));
    expect(await upgraded.verify()).toMatchObject({ ok: true, size: 5, checkpoints: 2 });
    await upgraded.close();
    expect(await readFile(checkpointLogPath(dir), "utf8")).toBe(texts.at(-1));
  });

  it("refuses a format-1 ledger beside a checkpoint log it does not match", async () => {
    const other = await signedLedger();
    const bare = await formatOneLedger(3, []);
    await writeFile(checkpointLogPath(bare.dir), other.texts.join(""));
    await expect(Ledger.open(bare.dir, { keyFile: bare.keyFile })).rejects.toMatchObject({
      code: "ledger-corrupt",
      message: expect.stringMatching(
        /its checkpoint log holds a checkpoint at size 3 that the ledger lacks \(records or checkpoints were lost\)$/,
      ),
    });
    const signed = await formatOneLedger(3, [3]);
    await writeFile(checkpointLogPath(signed.dir), other.texts.join(""));
    await expect(Ledger.open(signed.dir, { keyFile: signed.keyFile })).rejects.toMatchObject({
      code: "ledger-corrupt",
      message: expect.stringMatching(
        /its last checkpoint \(size 3\) is not in its checkpoint log \(the ledger or the log was altered\)$/,
      ),
    });
  });
});

/**
 * What an older op left: format 1, `size` records, unlinked checkpoints at `at` (the chain
 * does not pass through them), no checkpoint log.
 */
async function formatOneLedger(size: number, at: number[]) {
  const root = await makeTempDir("tail");
  const dir = join(root, "ledger");
  const keyFile = join(root, "ledger.key");
  const ledger = await Ledger.open(dir, { keyFile, origin: "op@old" });
  for (let n = 1; n <= size; n++) await ledger.append(step(n));
  await ledger.close();
  const key = await ledgerKey(keyFile);
  const texts = await withRawDb(dir, async (db) => {
    const texts: string[] = [];
    for (const seq of at) {
      const value = await db.get(recordKey(seq));
      const root = value?.subarray(HASH_AT, LEAF_AT).toString("hex") ?? "";
      const fields = { origin: "op@old", size: seq, root, time: "2026-01-01T00:00:00.000Z" };
      texts.push(signCheckpoint(fields, key));
      await db.put(checkpointKey(seq), Buffer.from(texts.at(-1) ?? ""));
    }
    await db.put(FORMAT_KEY, Buffer.from("1"));
    await db.del(LINKED_KEY);
    return texts;
  });
  return { dir, keyFile, texts };
}

async function ledgerKey(keyFile: string) {
  const secretKey = Buffer.from((await readFile(keyFile, "utf8")).trim(), "base64");
  return { secretKey, publicKey: getPublicKey(secretKey) };
}

/**
 * Six records with checkpoints at 2 and 4: the tail check walks records 3 to 6 (from the
 * checkpoint before the last one), linked through both checkpoints.
 */
async function sixRecords() {
  const root = await makeTempDir("tail");
  const dir = join(root, "ledger");
  const keyFile = join(root, "ledger.key");
  const ledger = await Ledger.open(dir, { keyFile, origin: "op@tail" });
  const texts: string[] = [];
  for (let n = 1; n <= 6; n++) {
    await ledger.append(step(n));
    if (n === 2 || n === 4) texts.push(await ledger.checkpoint());
  }
  await ledger.close();
  return { dir, keyFile, texts, log: checkpointLogPath(dir) };
}

type Fixture = Awaited<ReturnType<typeof sixRecords>>;

async function rawRecord(db: LedgerDb, seq: number): Promise<Buffer> {
  const value = await db.get(recordKey(seq));
  if (value === undefined) throw new Error(`no record ${seq}`);
  return value;
}

/** Cuts the ledger to `size` records, with a head that agrees (what a careful attacker does). */
async function cutRecords(db: LedgerDb, size: number, last: number): Promise<void> {
  for (let seq = size + 1; seq <= last; seq++) await db.del(recordKey(seq));
  const value = await rawRecord(db, size);
  await db.put(HEAD_KEY, encodeHead(size, value.subarray(HASH_AT, LEAF_AT)));
}

async function flipByte(db: LedgerDb, seq: number, at: number): Promise<void> {
  const value = await rawRecord(db, seq);
  value[at] = (value[at] ?? 0) ^ 0x01;
  await db.put(recordKey(seq), value);
}

/** Opening to write must refuse with ledger-corrupt, naming `problem`. */
async function refusedAtOpen(fixture: Fixture, problem: string | RegExp): Promise<void> {
  const error = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile }).then(
    async (ledger) => {
      await ledger.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpError);
  expect((error as OpError).code).toBe("ledger-corrupt");
  const prefix = `the ledger ${fixture.dir} is damaged: `;
  expect((error as OpError).message.startsWith(prefix)).toBe(true);
  const said = (error as OpError).message.slice(prefix.length);
  if (typeof problem === "string") expect(said).toBe(problem);
  else expect(said).toMatch(problem);
}

/** Opens to write, appends one record, and returns what verify says of the whole ledger. */
async function appendAndVerify(fixture: Fixture) {
  const ledger = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile });
  try {
    await ledger.append(step(7));
    return await ledger.verify();
  } finally {
    await ledger.close();
  }
}

describe("the tail check refuses to extend", () => {
  it("an untouched ledger is extended, linked through its last checkpoint", async () => {
    const fixture = await sixRecords();
    expect(await appendAndVerify(fixture)).toMatchObject({ ok: true, size: 7, checkpoints: 2 });
  });

  it("a ledger whose last record is a checkpoint's: the next record links to it", async () => {
    const fixture = await signedLedger();
    const ledger = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile });
    await ledger.append(step(4));
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 4, checkpoints: 3 });
    await ledger.close();
  });

  it("an empty ledger with a checkpoint over the genesis is extended", async () => {
    const root = await makeTempDir("tail");
    const fixture = { dir: join(root, "ledger"), keyFile: join(root, "ledger.key") };
    const ledger = await Ledger.open(fixture.dir, fixture);
    await ledger.checkpoint();
    await ledger.close();
    const again = await Ledger.open(fixture.dir, fixture);
    await again.append(step(1));
    expect(await again.verify()).toMatchObject({ ok: true, size: 1, checkpoints: 1 });
    await again.close();
  });

  it("a stray key after the last record", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.put(`${recordKey(6)}x`, Buffer.alloc(80)));
    await refusedAtOpen(fixture, `stray record key ${recordKey(6)}x`);
  });

  it("a missing head pointer", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.del(HEAD_KEY));
    await refusedAtOpen(fixture, "the head pointer is missing (the ledger has 6 records)");
  });

  it("an unreadable head pointer", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.put(HEAD_KEY, Buffer.from("six")));
    await refusedAtOpen(fixture, "the head pointer is unreadable");
  });

  it("a head one record behind (a record added past it)", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, async (db) => {
      const fifth = await rawRecord(db, 5);
      await db.put(HEAD_KEY, encodeHead(5, fifth.subarray(HASH_AT, LEAF_AT)));
    });
    await refusedAtOpen(fixture, "the head says 5 records but the last one stored is 6");
  });

  it("a head whose hash is not the last record's", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.put(HEAD_KEY, encodeHead(6, Buffer.alloc(32, 7))));
    await refusedAtOpen(fixture, "the head's hash does not match record 6");
  });

  it("an empty ledger with a head pointer that names no record's hash", async () => {
    const root = await makeTempDir("tail");
    const fixture = { dir: join(root, "ledger"), keyFile: join(root, "ledger.key") };
    await (await Ledger.open(fixture.dir, { ...fixture, origin: "op@tail" })).close();
    await withRawDb(fixture.dir, (db) => db.put(HEAD_KEY, encodeHead(0, Buffer.alloc(32, 7))));
    await refusedAtOpen(
      { ...fixture, texts: [], log: checkpointLogPath(fixture.dir) },
      "the head's hash does not match record 0",
    );
    await withRawDb(fixture.dir, (db) => db.put(HEAD_KEY, encodeHead(0, genesisHash("op@tail"))));
    await (await Ledger.open(fixture.dir, fixture)).close();
  });

  it("a stray key among the checkpoints", async () => {
    const fixture = await sixRecords();
    const stray = `${checkpointKey(4)}x`;
    await withRawDb(fixture.dir, (db) => db.put(stray, Buffer.from(fixture.texts[1] ?? "")));
    await refusedAtOpen(fixture, `stray checkpoint key ${stray}`);
  });

  it("an unreadable last checkpoint", async () => {
    const fixture = await sixRecords();
    const torn = "op ledger checkpoint\norigin op@tail\n";
    await withRawDb(fixture.dir, (db) => db.put(checkpointKey(4), Buffer.from(torn)));
    await writeFile(fixture.log, `${fixture.texts[0]}${torn}`);
    await refusedAtOpen(
      fixture,
      /^the checkpoint at size 4 is unreadable \(not an op ledger checkpoint: expected 7 lines, found 2\)$/,
    );
  });

  it("a checkpoint stored under another size", async () => {
    const fixture = await sixRecords();
    const [second] = fixture.texts;
    await withRawDb(fixture.dir, (db) => db.put(checkpointKey(4), Buffer.from(second ?? "")));
    await writeFile(fixture.log, second ?? "");
    await refusedAtOpen(fixture, "the checkpoint stored at size 4 says size 2");
  });

  it("a last checkpoint of another origin", async () => {
    const fixture = await sixRecords();
    const other = (fixture.texts[1] ?? "").replace("origin op@tail", "origin op@else");
    await withRawDb(fixture.dir, (db) => db.put(checkpointKey(4), Buffer.from(other)));
    await writeFile(fixture.log, `${fixture.texts[0]}${other}`);
    await refusedAtOpen(fixture, "the checkpoint at size 4 is for origin op@else");
  });

  it("a last checkpoint signed with another key", async () => {
    const fixture = await sixRecords();
    const forged = signCheckpoint(parseCheckpoint(fixture.texts[1] ?? ""), keygen());
    await withRawDb(fixture.dir, (db) => db.put(checkpointKey(4), Buffer.from(forged)));
    await writeFile(fixture.log, `${fixture.texts[0]}${forged}`);
    await refusedAtOpen(
      fixture,
      "the checkpoint at size 4 does not verify with the ledger key (the key was replaced, or the checkpoint forged)",
    );
  });

  it("records cut below the last checkpoint, head and all", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => cutRecords(db, 3, 6));
    await refusedAtOpen(fixture, "it has 3 records but a checkpoint at size 4 (records lost)");
  });

  it("a last checkpoint re-signed with the ledger key over another root", async () => {
    const fixture = await sixRecords();
    const genuine = parseCheckpoint(fixture.texts[1] ?? "");
    const forged = signCheckpoint(
      { ...genuine, root: "0".repeat(64) },
      await ledgerKey(fixture.keyFile),
    );
    await withRawDb(fixture.dir, async (db) => {
      await cutRecords(db, 4, 6);
      await db.put(checkpointKey(4), Buffer.from(forged));
    });
    await writeFile(fixture.log, `${fixture.texts[0]}${forged}`);
    await refusedAtOpen(fixture, "the checkpoint at size 4 does not match record 4 (altered)");
  });

  it.each([
    ["deleted", (db: LedgerDb) => db.del(recordKey(2))],
    ["too short to hold a hash", (db: LedgerDb) => db.put(recordKey(2), Buffer.alloc(20))],
  ])("the record of the checkpoint before the last %s", async (_how, tamper) => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, tamper);
    await refusedAtOpen(fixture, "record 2 is missing");
  });

  it("a record deleted after it", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.del(recordKey(4)));
    await refusedAtOpen(fixture, "record 4 is missing");
  });

  it("a stray key among the records it walks", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.put(`${recordKey(3)}x`, Buffer.alloc(80)));
    await refusedAtOpen(fixture, `stray key ${recordKey(3)}x among the records`);
  });

  it.each([
    ["cut short", (db: LedgerDb) => db.put(recordKey(5), Buffer.alloc(BODY_AT - 1, 1))],
    ["of another format version", (db: LedgerDb) => flipByte(db, 5, 0)],
  ])("a record %s", async (_how, tamper) => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, tamper);
    await refusedAtOpen(fixture, "record 5 is unreadable (altered)");
  });

  it("a record cut to its header, by its hash", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, async (db) =>
      db.put(recordKey(5), (await rawRecord(db, 5)).subarray(0, BODY_AT)),
    );
    await refusedAtOpen(fixture, "record 5: hash does not match its content (altered)");
  });

  it("a record whose prev is not the record before it", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => flipByte(db, 4, BODY_AT - 1));
    await refusedAtOpen(
      fixture,
      "record 4: prev does not match record 3 (removed, inserted or altered)",
    );
  });

  it.each([
    [3, "the checkpoint before the last"],
    [5, "the last checkpoint"],
  ])("record %i, not linked through %s", async (seq) => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => flipByte(db, seq, PREV_AT));
    await refusedAtOpen(
      fixture,
      `record ${seq}: prev does not match record ${seq - 1} and its checkpoint (removed, inserted or altered)`,
    );
  });

  it.each([3, 6])("record %i, whose hash is not its content's", async (seq) => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => flipByte(db, seq, BODY_AT + 2));
    await refusedAtOpen(fixture, `record ${seq}: hash does not match its content (altered)`);
  });

  it.each([
    [
      "a record before it altered",
      (db: LedgerDb) => flipByte(db, 2, BODY_AT + 2),
      "hash does not match its content (altered)",
    ],
    [
      "its own record cut to its hash",
      async (db: LedgerDb) => db.put(recordKey(2), (await rawRecord(db, 2)).subarray(0, LEAF_AT)),
      "value too short (altered)",
    ],
  ])(
    "but reads only the hash of the checkpoint before the last, and nothing before it: %s is left to op ledger verify",
    async (_what, tamper, problem) => {
      const fixture = await sixRecords();
      await withRawDb(fixture.dir, tamper);
      const ledger = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile });
      expect(await ledger.verify()).toMatchObject({ ok: false, problem: `record 2: ${problem}` });
      await ledger.close();
    },
  );
});

describe("the tail check against the checkpoint log", () => {
  it("refuses a ledger of two checkpoints whose log is gone", async () => {
    const fixture = await sixRecords();
    await rm(fixture.log);
    await refusedAtOpen(fixture, `its checkpoint log ${fixture.log} is missing`);
  });

  it("refuses a ledger of two checkpoints whose log is empty", async () => {
    const fixture = await sixRecords();
    await writeFile(fixture.log, "");
    await refusedAtOpen(
      fixture,
      `its checkpoint log ${fixture.log} is empty but the ledger has checkpoints`,
    );
  });

  it.each([
    ["gone", (log: string) => rm(log)],
    ["empty", (log: string) => writeFile(log, "")],
  ])(
    "completes the log of a ledger with one checkpoint when it is %s (the first checkpoint's crash window)",
    async (_how, tamper) => {
      const fixture = await signedLedger();
      const [first] = fixture.texts;
      await withRawDb(fixture.dir, async (db) => {
        await db.del(checkpointKey(2));
        await db.del(checkpointKey(3));
        await cutRecords(db, 1, 3);
      });
      await tamper(fixture.log);
      const ledger = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile });
      await ledger.close();
      expect(await readFile(fixture.log, "utf8")).toBe(first);
    },
  );

  it.each([
    ["gone", (log: string) => rm(log)],
    ["empty", (log: string) => writeFile(log, "")],
  ])("leaves the log of a ledger without checkpoints %s", async (how, tamper) => {
    const root = await makeTempDir("tail");
    const fixture = { dir: join(root, "ledger"), keyFile: join(root, "ledger.key") };
    const ledger = await Ledger.open(fixture.dir, fixture);
    await ledger.append(step(1));
    await ledger.close();
    const log = checkpointLogPath(fixture.dir);
    await writeFile(log, "");
    await tamper(log);
    const again = await Ledger.open(fixture.dir, fixture);
    await again.append(step(2));
    await again.close();
    if (how === "gone") await expect(readFile(log, "utf8")).rejects.toThrow(/ENOENT/);
    else expect(await readFile(log, "utf8")).toBe("");
  });

  it("refuses a log whose last checkpoint the ledger lacks", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, (db) => db.del(checkpointKey(4)));
    await refusedAtOpen(
      fixture,
      "its checkpoint log holds a checkpoint at size 4 that the ledger lacks (records or checkpoints were lost)",
    );
  });

  it("refuses a log whose last entry is another checkpoint of the same size", async () => {
    const fixture = await sixRecords();
    const other = signCheckpoint(
      { ...parseCheckpoint(fixture.texts[1] ?? ""), time: "2020-01-01T00:00:00.000Z" },
      await ledgerKey(fixture.keyFile),
    );
    await writeFile(fixture.log, `${fixture.texts[0]}${other}`);
    await refusedAtOpen(
      fixture,
      "its last checkpoint (size 4) is not in its checkpoint log (the ledger or the log was altered)",
    );
  });

  it("matches a stored checkpoint followed by blank lines with its log entry", async () => {
    // The last record's checkpoint: no record links to its bytes yet.
    const fixture = await signedLedger();
    await withRawDb(fixture.dir, (db) =>
      db.put(checkpointKey(3), Buffer.from(`${fixture.texts[2]}\n\n`)),
    );
    const ledger = await Ledger.open(fixture.dir, { keyFile: fixture.keyFile });
    await ledger.close();
    expect(await readFile(fixture.log, "utf8")).toBe(fixture.texts.join(""));
  });

  it("refuses a log with checkpoints when the ledger has none", async () => {
    const fixture = await sixRecords();
    await withRawDb(fixture.dir, async (db) => {
      await db.del(checkpointKey(2));
      await db.del(checkpointKey(4));
    });
    await refusedAtOpen(
      fixture,
      "its checkpoint log holds a checkpoint at size 4 that the ledger lacks (records or checkpoints were lost)",
    );
  });

  it("refuses a log whose last entry is torn", async () => {
    const fixture = await sixRecords();
    await writeFile(fixture.log, `${fixture.texts.join("")}op ledger checkpoint\norigin op@t`);
    await refusedAtOpen(
      fixture,
      /^the last entry of its checkpoint log is unreadable \(not an op ledger checkpoint: /,
    );
  });

  it("matches the log's last entry whatever trailing blank lines it has", async () => {
    const fixture = await sixRecords();
    await writeFile(fixture.log, `${fixture.texts.join("")}\n\n`);
    expect(await appendAndVerify(fixture)).toMatchObject({ ok: true, size: 7 });
    expect(await readFile(fixture.log, "utf8")).toBe(`${fixture.texts.join("")}\n\n`);
  });
});
