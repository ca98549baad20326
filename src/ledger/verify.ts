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
import { verifySignature } from "./ed25519.js";
import { genesisHash, HASH_BYTES, sha256 } from "./hash.js";
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
  /** What is wrong around the ledger short of damage (a key others may read). */
  warnings?: string[];
}

/** A key rotation: record `seq` installed the key `next` (base64) in place of `previous`. */
export interface Rotation {
  seq: number;
  previous: string;
  next: string;
  /** `next`'s signature over the checkpoint at `seq` (base64). */
  endorsement?: string;
}

/**
 * What is wrong with a key rotation, if anything: it must follow the one before it
 * (`before`), and the new key must have countersigned the checkpoint over its record (`text`).
 */
export function rotationProblem(
  rotation: Rotation,
  before: Rotation | undefined,
  text: string | undefined,
): string | undefined {
  const label = `the key rotation at record ${rotation.seq}`;
  if (before !== undefined && before.next !== rotation.previous) {
    return `${label} does not follow the one at record ${before.seq} (forged)`;
  }
  if (text === undefined) return `${label} has no checkpoint (removed)`;
  const endorsed =
    rotation.endorsement !== undefined &&
    verifySignature(
      Buffer.from(rotation.endorsement, "base64"),
      Buffer.from(text, "utf8"),
      Buffer.from(rotation.next, "base64"),
    );
  return endorsed ? undefined : `${label} is not countersigned by the key it installed (forged)`;
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
  /** Checkpoints at this size or later are linked into the chain (store.ts); default 0. */
  linkedFrom?: number;
  /** Key rotations, oldest first: which key signs a checkpoint at each size. */
  rotations?: readonly Rotation[];
  /** The checkpoint log's entries (undefined: there is no log). */
  logged?: readonly string[];
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
  /**
   * A record that does not link to the checkpoint before it: reported after the checkpoint
   * checks, which say more when that checkpoint was altered or forged.
   */
  unlinked?: Problem;
  /** Hash of the record at each requested size (size 0: genesis). */
  roots: Map<number, string>;
}

/** Below this many records a worker costs more to start than the hashing it would move. */
const WORKER_MIN_RECORDS = 50_000;

/**
 * A stand-in for a previous record whose hash is the link of `previous` (a record value or
 * such a stand-in) with a checkpoint: SHA-256(0x01 ‖ hash ‖ SHA-256(checkpoint text)).
 */
function linkOf(previous: Buffer, checkpointHash: Buffer): Buffer {
  const link = sha256(
    Buffer.concat([Buffer.from([1]), previous.subarray(HASH_AT, LEAF_AT), checkpointHash]),
  );
  return Buffer.concat([Buffer.alloc(HASH_AT), link]);
}

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
  links: Map<number, Buffer>,
  hashes: HashCheck,
): Promise<Walk> {
  const genesis = genesisHash(origin);
  const roots = new Map<number, string>();
  if (wanted.has(0)) roots.set(0, genesis.toString("hex"));
  let expected = 1;
  // The previous record's hash lives in its value at HASH_AT; record 1 links to the genesis.
  let previous: Buffer = Buffer.concat([Buffer.alloc(HASH_AT), genesis]);
  let problem: Problem | undefined;
  let unlinked: Problem | undefined;
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
        let linkedPrevious = previous;
        const checkpointHash = links.get(expected - 1);
        if (checkpointHash !== undefined && value.length >= BODY_AT) {
          // After a linked checkpoint the record links to it, not to the record alone.
          linkedPrevious = linkOf(previous, checkpointHash);
          if (!linksTo(value, linkedPrevious)) {
            unlinked ??= {
              firstBad: expected,
              problem: `record ${expected}: prev does not match record ${expected - 1} and its checkpoint (the checkpoint was replaced, or records altered)`,
            };
            linkedPrevious = value.subarray(PREV_AT - HASH_AT, BODY_AT);
          }
        }
        problem = recordProblem(key, value, expected, linkedPrevious, origin);
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
  const found = unlinked === undefined ? {} : { unlinked };
  if (problem !== undefined) {
    return { size: (problem.firstBad ?? expected) - 1, problem, roots, ...found };
  }
  const head = await db.get(HEAD_KEY);
  return { size: expected - 1, problem: checkHead(head, expected - 1, previous), roots, ...found };
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
  // For no records, `last` holds the genesis: op writes a head only with a record.
  if (decoded.hash.compare(last, HASH_AT, HASH_AT + HASH_BYTES) !== 0) {
    const problem = `the head's hash does not match record ${size} (altered)`;
    return size > 0 ? { firstBad: size, problem } : { problem };
  }
  return undefined;
}

interface Stored {
  size: number;
  /** The stored bytes. */
  text: Buffer;
  parsed?: ParsedCheckpoint;
  /** Why the stored text could not be parsed. */
  unreadable?: string;
}

async function storedCheckpoints(db: LedgerDb): Promise<Stored[]> {
  const stored: Stored[] = [];
  for await (const [key, value] of db.iterator(CHECKPOINT_RANGE)) {
    const size = keyNumber(key) ?? Number.NaN;
    try {
      stored.push({ size, text: value, parsed: parseCheckpoint(value.toString("utf8")) });
    } catch (error) {
      stored.push({ size, text: value, unreadable: (error as Error).message });
    }
  }
  return stored;
}

/** The public key (base64) that signs checkpoints at `size`; `current` when no rotation says. */
export function signerAt(
  rotations: readonly Rotation[],
  size: number,
  current: string | undefined,
): string | undefined {
  // The checkpoint at a rotation record's own size is the old key's endorsement of the new one.
  return rotations.find((rotation) => rotation.seq >= size)?.previous ?? current;
}

function keyAt(input: VerifyInput, size: number): Uint8Array | undefined {
  const current =
    input.publicKey === undefined ? undefined : Buffer.from(input.publicKey).toString("base64");
  const signer = signerAt(input.rotations ?? [], size, current);
  return signer === undefined ? undefined : Buffer.from(signer, "base64");
}

/** Checks one checkpoint against the walked chain; `label` starts the problem sentence. */
function checkCheckpoint(
  parsed: ParsedCheckpoint,
  label: string,
  input: VerifyInput,
  walk: Walk,
  confirmed: number,
): Problem | undefined {
  const publicKey = keyAt(input, parsed.size);
  if (publicKey === undefined) {
    return {
      problem: `${label}: cannot check its signature: no key at ${input.keyFile} or ${input.keyFile}.pub`,
    };
  }
  if (!signatureValid(parsed, publicKey)) {
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

/**
 * The checkpoint log against the ledger: each entry must be a checkpoint of this chain that
 * the ledger still holds. Records or checkpoints LevelDB lost show here.
 */
function checkLog(
  logged: readonly { text: string; parsed: ParsedCheckpoint }[],
  stored: readonly Stored[],
  input: VerifyInput,
  walk: Walk,
): Problem | undefined {
  const trim = (text: string) => text.replace(/\s+$/, "");
  const storedText = new Map(stored.map((c) => [c.size, trim(c.text.toString("utf8"))]));
  for (const { text, parsed: entry } of logged) {
    // The same text as a stored checkpoint, which was checked already.
    if (storedText.get(entry.size) === trim(text)) continue;
    const label = `the checkpoint log's checkpoint at size ${entry.size}`;
    const problem = checkCheckpoint(entry, label, input, walk, 0);
    if (problem !== undefined) {
      return entry.size > walk.size
        ? {
            firstBad: walk.size + 1,
            problem: `ledger has ${walk.size} records but ${label} exists (records lost)`,
          }
        : problem;
    }
    return { problem: `${label} is missing from the ledger (checkpoints deleted or lost)` };
  }
  return undefined;
}

/** Every key rotation follows the one before and is countersigned; the last installed this key. */
function checkRotations(input: VerifyInput, stored: readonly Stored[]): Problem | undefined {
  const rotations = input.rotations ?? [];
  const texts = new Map(stored.map((c) => [c.size, c.text.toString("utf8")]));
  for (const [i, rotation] of rotations.entries()) {
    const problem = rotationProblem(rotation, rotations[i - 1], texts.get(rotation.seq));
    if (problem !== undefined) return { firstBad: rotation.seq, problem };
  }
  const last = rotations.at(-1);
  const current =
    input.publicKey === undefined ? undefined : Buffer.from(input.publicKey).toString("base64");
  if (last !== undefined && current !== undefined && last.next !== current) {
    return {
      problem: `the ledger key is not the one the key rotation at record ${last.seq} installed`,
    };
  }
  return undefined;
}

export async function verifyChain(input: VerifyInput): Promise<VerifyReport> {
  // Parsed first: the walk keeps the hash at each size a checkpoint names, and nothing else.
  const trusted = input.trusted === undefined ? undefined : parseCheckpoint(input.trusted);
  const stored = await storedCheckpoints(input.db);
  const logged: { text: string; parsed: ParsedCheckpoint }[] = [];
  const logProblems: Problem[] = [];
  for (const [i, text] of (input.logged ?? []).entries()) {
    try {
      logged.push({ text, parsed: parseCheckpoint(text) });
    } catch (error) {
      logProblems.push({
        problem: `the checkpoint log's entry ${i + 1} is unreadable (${(error as Error).message}) (altered)`,
      });
    }
  }
  const wanted = new Set<number>(stored.map((c) => c.parsed?.size ?? c.size));
  if (trusted !== undefined) wanted.add(trusted.size);
  for (const entry of logged) wanted.add(entry.parsed.size);
  const linkedFrom = input.linkedFrom ?? 0;
  const links = new Map<number, Buffer>();
  for (const checkpoint of stored) {
    if (checkpoint.size >= linkedFrom) {
      links.set(checkpoint.size, sha256(checkpoint.text));
    }
  }

  const useWorker = input.hashWorker ?? (await headSeq(input.db)) >= WORKER_MIN_RECORDS;
  const hashes = useWorker ? new WorkerHashCheck() : new InlineHashCheck();
  const walk = await walkChain(input.db, input.origin, wanted, links, hashes).finally(() =>
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
  if (walk.problem !== undefined && walk.unlinked === undefined) return report(walk.problem);

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
  if (walk.unlinked !== undefined) return report(walk.unlinked, latest);
  const rotationFailure = checkRotations(input, stored);
  if (rotationFailure !== undefined) return report(rotationFailure, latest);
  if (walk.problem !== undefined) return report(walk.problem, latest);
  const logProblem = logProblems[0] ?? checkLog(logged, stored, input, walk);
  if (logProblem !== undefined) return report(logProblem, latest);

  if (trusted === undefined) return report(undefined, latest);
  const before = stored.filter((c) => c.size < trusted.size).at(-1)?.size ?? 0;
  const problem = checkCheckpoint(trusted, TRUSTED, input, walk, before);
  return report(problem, { size: trusted.size, ok: problem === undefined });
}
