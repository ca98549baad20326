/**
 * The check every writing run makes before its first append: cheap (it reads the head, the
 * last checkpoint, the records after it and the checkpoint log's tail, whatever the ledger's
 * size), and it refuses to extend a ledger whose tail is damaged, so that no run ever buries
 * the evidence under new records. `op ledger verify` checks everything else, in O(n).
 */
import { type ParsedCheckpoint, parseCheckpoint, signatureValid } from "./checkpoint.js";
import { genesisHash, sha256Matches } from "./hash.js";
import { corruptLedger } from "./storage.js";
import {
  BODY_AT,
  CHECKPOINT_RANGE,
  checkpointLink,
  decodeHead,
  HASH_AT,
  HEAD_KEY,
  keyNumber,
  LEAF_AT,
  PREV_AT,
  RECORD_RANGE,
  RECORD_VERSION,
  recordKey,
} from "./store.js";
import type { LedgerDb } from "./verify.js";

export interface TailInput {
  db: LedgerDb;
  dir: string;
  origin: string;
  /** Checkpoints at this size or later are linked into the chain. */
  linkedFrom: number;
  /** The last checkpoint in the checkpoint log ("" none, undefined no log). */
  logged: string | undefined;
  /** Whether this ledger has ever had a checkpoint log (then it must be there). */
  logRequired: boolean;
  /** The public key the last checkpoint must verify with (derived only when one exists). */
  publicKey: (size: number) => Uint8Array;
}

export interface Tail {
  size: number;
  /** Hash of the last record (the genesis prev when there is none). */
  head: Buffer;
  /** prev of the next record: the head, or its link with a checkpoint at this size. */
  link: Buffer;
  /** The last stored checkpoint's text, if any. */
  checkpoint: { size: number; text: string } | undefined;
  /** The log lacks the ledger's last checkpoint (a crash between the two writes). */
  logBehind: boolean;
}

/** The last two stored checkpoints, newest first. */
async function lastCheckpoints(
  db: LedgerDb,
  dir: string,
): Promise<{ size: number; text: string }[]> {
  const found = await db.iterator({ ...CHECKPOINT_RANGE, reverse: true, limit: 2 }).all();
  return found.map(([key, value]) => {
    const size = keyNumber(key);
    if (size === undefined) throw corruptLedger(dir, `stray checkpoint key ${key}`);
    return { size, text: value.toString("utf8") };
  });
}

function parsed(dir: string, text: string, where: string): ParsedCheckpoint {
  try {
    return parseCheckpoint(text);
  } catch (error) {
    throw corruptLedger(dir, `${where} is unreadable (${(error as Error).message})`);
  }
}

/** Throws ledger-corrupt (exit 3) naming what is wrong; returns where the next record goes. */
export async function checkTail(input: TailInput): Promise<Tail> {
  const { db, dir, origin } = input;
  const [[last], headValue, checkpoints] = await Promise.all([
    db.iterator({ ...RECORD_RANGE, reverse: true, limit: 1 }).all(),
    db.get(HEAD_KEY),
    lastCheckpoints(db, dir),
  ]);
  const size = last === undefined ? 0 : (keyNumber(last[0]) ?? -1);
  if (size < 0) throw corruptLedger(dir, `stray record key ${last?.[0]}`);
  const lastHash =
    last === undefined ? genesisHash(origin) : Buffer.from(last[1].subarray(HASH_AT, LEAF_AT));

  // The head pointer is written in the same batch as the last record: they always agree.
  if (headValue === undefined) {
    if (size > 0)
      throw corruptLedger(dir, `the head pointer is missing (the ledger has ${size} records)`);
  } else {
    const head = decodeHead(headValue);
    if (head === undefined) throw corruptLedger(dir, "the head pointer is unreadable");
    if (head.seq !== size) {
      throw corruptLedger(
        dir,
        `the head says ${head.seq} records but the last one stored is ${size}`,
      );
    }
    // For no records, the genesis: op writes a head only with a record.
    if (!head.hash.equals(lastHash)) {
      throw corruptLedger(dir, `the head's hash does not match record ${size}`);
    }
  }

  const [latest, before] = checkpoints;
  const logBehind = compareWithLog(input, latest, before);

  // The last checkpoint: signed by the right key, for this ledger, within it.
  if (latest !== undefined) {
    const checkpoint = parsed(dir, latest.text, `the checkpoint at size ${latest.size}`);
    if (checkpoint.size !== latest.size) {
      throw corruptLedger(
        dir,
        `the checkpoint stored at size ${latest.size} says size ${checkpoint.size}`,
      );
    }
    if (checkpoint.origin !== origin) {
      throw corruptLedger(
        dir,
        `the checkpoint at size ${latest.size} is for origin ${checkpoint.origin}`,
      );
    }
    if (!signatureValid(checkpoint, input.publicKey(checkpoint.size))) {
      throw corruptLedger(
        dir,
        `the checkpoint at size ${latest.size} does not verify with the ledger key (the key was replaced, or the checkpoint forged)`,
      );
    }
    if (checkpoint.size > size) {
      throw corruptLedger(
        dir,
        `it has ${size} records but a checkpoint at size ${checkpoint.size} (records lost)`,
      );
    }
  }
  // The records since the checkpoint before the last one (the last signed run and what came
  // after it): present, linked through both checkpoints, hashing to what they say, and the
  // last checkpoint's root is the record it names.
  const from = before?.size ?? 0;
  const texts = new Map<number, string>();
  for (const checkpoint of [before, latest]) {
    if (checkpoint !== undefined && checkpoint.size >= input.linkedFrom) {
      texts.set(checkpoint.size, checkpoint.text);
    }
  }
  const start = from === 0 ? genesisHash(origin) : await recordHash(db, from);
  if (start === undefined) throw corruptLedger(dir, `record ${from} is missing`);
  const { head, root } = await walkFrom(input, from, size, start, texts, latest?.size);
  if (latest !== undefined && root?.toString("hex") !== parseCheckpoint(latest.text).root) {
    throw corruptLedger(
      dir,
      `the checkpoint at size ${latest.size} does not match record ${latest.size} (altered)`,
    );
  }
  const link = texts.has(size) ? checkpointLink(head, texts.get(size) as string) : head;
  return { size, head, link, checkpoint: latest, logBehind };
}

async function recordHash(db: LedgerDb, seq: number): Promise<Buffer | undefined> {
  const value = await db.get(recordKey(seq));
  return value === undefined || value.length < LEAF_AT
    ? undefined
    : Buffer.from(value.subarray(HASH_AT, LEAF_AT));
}

/**
 * Records from+1 .. size: present, linked (through the checkpoints in `texts`) and hashing to
 * what they say. Returns the last hash and the hash at `rootAt`.
 */
async function walkFrom(
  input: TailInput,
  from: number,
  size: number,
  start: Buffer,
  texts: ReadonlyMap<number, string>,
  rootAt: number | undefined,
): Promise<{ head: Buffer; root: Buffer | undefined }> {
  const { db, dir } = input;
  let expected = from + 1;
  let head = start;
  let root = rootAt === from ? start : undefined;
  for await (const [key, value] of db.iterator({ gt: recordKey(from), lt: RECORD_RANGE.lt })) {
    const seq = keyNumber(key);
    if (seq !== expected) {
      throw corruptLedger(
        dir,
        seq === undefined ? `stray key ${key} among the records` : `record ${expected} is missing`,
      );
    }
    if (value.length < BODY_AT || value[0] !== RECORD_VERSION) {
      throw corruptLedger(dir, `record ${seq} is unreadable (altered)`);
    }
    const text = texts.get(seq - 1);
    const link = text === undefined ? head : checkpointLink(head, text);
    if (!link.equals(value.subarray(PREV_AT, BODY_AT))) {
      throw corruptLedger(
        dir,
        `record ${seq}: prev does not match record ${seq - 1}${text === undefined ? "" : " and its checkpoint"} (removed, inserted or altered)`,
      );
    }
    if (!sha256Matches(value.subarray(LEAF_AT), value, HASH_AT)) {
      throw corruptLedger(dir, `record ${seq}: hash does not match its content (altered)`);
    }
    head = Buffer.from(value.subarray(HASH_AT, LEAF_AT));
    if (seq === rootAt) root = head;
    expected++;
  }
  if (expected - 1 !== size) throw corruptLedger(dir, `records ${expected} to ${size} are missing`);
  return { head, root };
}

/**
 * The log's last checkpoint must be the ledger's last one (or, after a crash between the two
 * writes, the one before it). Returns whether the log is one behind.
 */
function compareWithLog(
  input: TailInput,
  latest: { size: number; text: string } | undefined,
  before: { size: number; text: string } | undefined,
): boolean {
  const { dir, logged } = input;
  if (logged === undefined) {
    if (latest === undefined) return false;
    // One checkpoint not yet in a missing log is the crash window of the first checkpoint.
    if (input.logRequired && before !== undefined) {
      throw corruptLedger(dir, `its checkpoint log ${dir}.checkpoints is missing`);
    }
    return true;
  }
  if (logged === "") {
    if (latest === undefined) return false;
    if (before === undefined) return true;
    throw corruptLedger(
      dir,
      `its checkpoint log ${dir}.checkpoints is empty but the ledger has checkpoints`,
    );
  }
  if (latest !== undefined && same(logged, latest.text)) return false;
  if (before !== undefined && same(logged, before.text)) return true;
  const size = parsed(dir, logged, "the last entry of its checkpoint log").size;
  throw corruptLedger(
    dir,
    latest === undefined || size > latest.size
      ? `its checkpoint log holds a checkpoint at size ${size} that the ledger lacks (records or checkpoints were lost)`
      : `its last checkpoint (size ${latest.size}) is not in its checkpoint log (the ledger or the log was altered)`,
  );
}

function same(a: string, b: string): boolean {
  return a.replace(/\s+$/, "") === b.replace(/\s+$/, "");
}
