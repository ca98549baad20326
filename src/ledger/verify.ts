/**
 * `op ledger verify`: walks the chain once in key order and names the first bad record, then
 * checks every stored checkpoint and, if given, a trusted one kept outside the database.
 *
 * A bare chain only proves that records agree with each other: whoever can write the database
 * can also truncate it or rewrite it from any record on with fresh hashes. The signed
 * checkpoints catch that, up to the last checkpoint they cover; a checkpoint saved elsewhere
 * also catches deleted checkpoints and a truncated tail.
 */
import type { Level } from "level";
import { type ParsedCheckpoint, parseCheckpoint, signatureValid } from "./checkpoint.js";
import { genesisHash, HASH_BYTES } from "./hash.js";
import { type HashCheck, InlineHashCheck, WorkerHashCheck } from "./hash-check.js";
import {
  BODY_AT,
  CHECKPOINT_RANGE,
  decodeHead,
  HASH_AT,
  HEAD_KEY,
  keyNumber,
  LEAF_AT,
  PREV_AT,
  RECORD_RANGE,
  RECORD_VERSION,
  recordKeySeq,
} from "./store.js";

export type LedgerDb = Level<string, Buffer>;

export interface VerifyReport {
  ok: boolean;
  /** Records checked and found good (all of them when ok). */
  size: number;
  /** The first record that is wrong, missing, or not covered by a checkpoint that failed. */
  firstBad?: number;
  /** One plain sentence naming what is wrong. */
  problem?: string;
  /** The trusted checkpoint when one was given, else the latest stored one. */
  checkpoint?: { size: number; ok: boolean };
  /** How many stored checkpoints were checked. */
  checkpoints: number;
}

export interface VerifyInput {
  db: LedgerDb;
  origin: string;
  /** The ledger's public key; undefined when neither key file could be read. */
  publicKey: Uint8Array | undefined;
  keyFile: string;
  /** Checkpoint text saved outside the database. */
  trusted?: string;
  /** Hash on a worker thread (true) or inline (false); default: by the ledger's size. */
  hashWorker?: boolean;
}

interface Problem {
  problem: string;
  firstBad?: number;
}

const TRUSTED = "trusted checkpoint";
const BATCH = 1000;
const BATCH_BYTES = 1 << 20;

interface Walk {
  /** Records found good. */
  size: number;
  problem?: Problem;
  /** Hash of the record at each requested size (size 0: genesis). */
  roots: Map<number, string>;
}

/** Below this many records a worker costs more to start than the hashing it would move. */
const WORKER_MIN_RECORDS = 50_000;

/** Whether `value`'s prev is the hash stored in `previous` (a JS loop: no native call). */
function linksTo(value: Buffer, previous: Buffer): boolean {
  for (let i = 0; i < HASH_BYTES; i++) {
    if (value[PREV_AT + i] !== previous[HASH_AT + i]) return false;
  }
  return true;
}

/** What is wrong with record `seq` short of its hash (checked apart), if anything. */
function recordProblem(
  key: string,
  value: Buffer,
  seq: number,
  previous: Buffer,
  origin: string,
): Problem | undefined {
  if (recordKeySeq(key) !== seq) return gap(key, seq);
  if (value.length < BODY_AT) {
    return { firstBad: seq, problem: `record ${seq}: value too short (altered)` };
  }
  if (value[0] !== RECORD_VERSION) {
    return {
      firstBad: seq,
      problem: `record ${seq}: unknown format version ${value[0]} (altered)`,
    };
  }
  if (!linksTo(value, previous)) {
    return {
      firstBad: seq,
      problem:
        seq === 1
          ? `record 1: prev is not the genesis of origin ${origin} (spliced from another ledger, or altered)`
          : `record ${seq}: prev does not match record ${seq - 1} (removed, reordered or inserted)`,
    };
  }
  return undefined;
}

/**
 * The chain walk: key continuity, version, prev link and hash of every record, stopping at the
 * first bad one. The next batch is read (on libuv's pool) while this one is checked.
 */
async function walkChain(
  db: LedgerDb,
  origin: string,
  wanted: Set<number>,
  hashes: HashCheck,
): Promise<Walk> {
  const genesis = genesisHash(origin);
  const roots = new Map<number, string>();
  if (wanted.has(0)) roots.set(0, genesis.toString("hex"));
  let expected = 1;
  // The previous record's hash lives in its value at HASH_AT; record 1 links to the genesis.
  let previous: Buffer = Buffer.concat([Buffer.alloc(HASH_AT), genesis]);
  let problem: Problem | undefined;
  const iterator = db.iterator({ ...RECORD_RANGE, highWaterMarkBytes: BATCH_BYTES });
  let pending = iterator.nextv(BATCH);
  try {
    for (;;) {
      const entries = await pending;
      if (entries.length === 0) break;
      pending = iterator.nextv(BATCH);
      const first = expected;
      const values: Buffer[] = [];
      for (const [key, value] of entries) {
        problem = recordProblem(key, value, expected, previous, origin);
        if (problem !== undefined) break;
        if (wanted.has(expected)) {
          roots.set(expected, value.toString("hex", HASH_AT, LEAF_AT));
        }
        values.push(value);
        previous = value;
        expected++;
      }
      await hashes.add(values, first);
      if (problem !== undefined || hashes.failed) break;
    }
    // A bad hash before the first other problem comes first: that record is the first bad one.
    const badHash = await hashes.finish();
    if (badHash !== undefined && (problem?.firstBad ?? Number.POSITIVE_INFINITY) > badHash) {
      problem = {
        firstBad: badHash,
        problem: `record ${badHash}: hash does not match its content (altered)`,
      };
    }
  } finally {
    await pending.catch(() => undefined);
    await iterator.close();
  }
  if (problem !== undefined) return { size: (problem.firstBad ?? expected) - 1, problem, roots };
  const head = await db.get(HEAD_KEY);
  return { size: expected - 1, problem: checkHead(head, expected - 1, previous), roots };
}

async function headSeq(db: LedgerDb): Promise<number> {
  const head = await db.get(HEAD_KEY);
  return head === undefined ? 0 : (decodeHead(head)?.seq ?? 0);
}

function gap(key: string, expected: number): Problem {
  const found = keyNumber(key);
  if (found === undefined || found < expected) {
    return { firstBad: expected, problem: `record ${expected}: stray key ${key} (inserted)` };
  }
  return {
    firstBad: expected,
    problem:
      found === expected + 1
        ? `record ${expected} missing`
        : `records ${expected} to ${found - 1} missing`,
  };
}

/** The head pointer must name the last record: it catches a tail cut without updating it. */
function checkHead(head: Buffer | undefined, size: number, last: Buffer): Problem | undefined {
  if (head === undefined) {
    return size === 0 ? undefined : { problem: "the head pointer is missing (altered)" };
  }
  const decoded = decodeHead(head);
  if (decoded === undefined) return { problem: "the head pointer is unreadable (altered)" };
  if (decoded.seq > size) {
    return {
      firstBad: size + 1,
      problem: `ledger has ${size} records but its head says ${decoded.seq} (truncated)`,
    };
  }
  if (decoded.seq < size) {
    return {
      firstBad: decoded.seq + 1,
      problem: `record ${decoded.seq + 1} is beyond the head (${decoded.seq}) (inserted)`,
    };
  }
  if (size > 0 && decoded.hash.compare(last, HASH_AT, HASH_AT + HASH_BYTES) !== 0) {
    return { firstBad: size, problem: `the head's hash does not match record ${size} (altered)` };
  }
  return undefined;
}

interface Stored {
  size: number;
  parsed?: ParsedCheckpoint;
  /** Why the stored text could not be parsed. */
  unreadable?: string;
}

async function storedCheckpoints(db: LedgerDb): Promise<Stored[]> {
  const stored: Stored[] = [];
  for await (const [key, value] of db.iterator(CHECKPOINT_RANGE)) {
    const size = keyNumber(key) ?? Number.NaN;
    try {
      stored.push({ size, parsed: parseCheckpoint(value.toString("utf8")) });
    } catch (error) {
      stored.push({ size, unreadable: (error as Error).message });
    }
  }
  return stored;
}

/** Checks one checkpoint against the walked chain; `label` starts the problem sentence. */
function checkCheckpoint(
  parsed: ParsedCheckpoint,
  label: string,
  input: VerifyInput,
  walk: Walk,
  confirmed: number,
): Problem | undefined {
  if (input.publicKey === undefined) {
    return {
      problem: `${label}: cannot check its signature: no key at ${input.keyFile} or ${input.keyFile}.pub`,
    };
  }
  if (!signatureValid(parsed, input.publicKey)) {
    return {
      problem: `${label}: signature does not verify with this ledger's key (forged, or signed with another key)`,
    };
  }
  if (parsed.origin !== input.origin) {
    return { problem: `${label} is for origin ${parsed.origin}, not ${input.origin}` };
  }
  if (parsed.size > walk.size) {
    const says = label === TRUSTED ? `${label} says ${parsed.size}` : `${label} exists`;
    return {
      firstBad: walk.size + 1,
      problem: `ledger has ${walk.size} records but ${says} (truncated)`,
    };
  }
  if (walk.roots.get(parsed.size) !== parsed.root) {
    const since =
      confirmed > 0 ? ` after record ${confirmed}, which an earlier checkpoint confirms` : "";
    return {
      firstBad: confirmed + 1,
      problem: `${label} does not match the chain: records up to ${parsed.size} were rewritten${since}`,
    };
  }
  return undefined;
}

export async function verifyChain(input: VerifyInput): Promise<VerifyReport> {
  // Parsed first: the walk keeps the hash at each size a checkpoint names, and nothing else.
  const trusted = input.trusted === undefined ? undefined : parseCheckpoint(input.trusted);
  const stored = await storedCheckpoints(input.db);
  const wanted = new Set<number>(stored.map((c) => c.parsed?.size ?? c.size));
  if (trusted !== undefined) wanted.add(trusted.size);

  const useWorker = input.hashWorker ?? (await headSeq(input.db)) >= WORKER_MIN_RECORDS;
  const hashes = useWorker ? new WorkerHashCheck() : new InlineHashCheck();
  const walk = await walkChain(input.db, input.origin, wanted, hashes).finally(() =>
    hashes.close(),
  );
  const report = (problem: Problem | undefined, checkpoint?: { size: number; ok: boolean }) => ({
    ok: problem === undefined,
    size: walk.size,
    ...(problem?.firstBad === undefined ? {} : { firstBad: problem.firstBad }),
    ...(problem === undefined ? {} : { problem: problem.problem }),
    ...(checkpoint === undefined ? {} : { checkpoint }),
    checkpoints: stored.length,
  });
  if (walk.problem !== undefined) return report(walk.problem);

  // Ascending size: the last one that still matches narrows where a rewrite started.
  let confirmed = 0;
  let latest: { size: number; ok: boolean } | undefined;
  for (const checkpoint of stored) {
    const label = `checkpoint at size ${checkpoint.size}`;
    const problem =
      checkpoint.parsed === undefined
        ? { problem: `${label} is unreadable (${checkpoint.unreadable}) (altered)` }
        : checkpoint.parsed.size !== checkpoint.size
          ? { problem: `${label} says size ${checkpoint.parsed.size} (moved, or altered)` }
          : checkCheckpoint(checkpoint.parsed, label, input, walk, confirmed);
    latest = { size: checkpoint.size, ok: problem === undefined };
    if (problem !== undefined) return report(problem, latest);
    confirmed = checkpoint.size;
  }

  if (trusted === undefined) return report(undefined, latest);
  const before = stored.filter((c) => c.size < trusted.size).at(-1)?.size ?? 0;
  const problem = checkCheckpoint(trusted, TRUSTED, input, walk, before);
  return report(problem, { size: trusted.size, ok: problem === undefined });
}
