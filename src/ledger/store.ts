/**
 * On-disk format of op's audit ledger: one LevelDB database, keys UTF-8, values binary.
 *
 *   m!format    "2"                   format of this database ("1": before checkpoint links)
 *   m!origin    origin name (UTF-8)   e.g. "op@web1"; fixes record 1's prev
 *   m!head      [seq u64 BE][hash 32] the last record, written in the same batch as it
 *   m!linked    size (decimal)        checkpoints at this size or later are linked (see below)
 *   r!<seq>     record value          seq counts from 1
 *   c!<size>    checkpoint text       signed note over (origin, size, root = hash of record size)
 *   p!<seq>     pending intent (JSON) an intent with no final outcome yet, kept in the batches
 *                                     that write the intent and its outcome (Ledger.pending)
 *   k!<seq>     key rotation (JSON)   {previous, next}: record seq installed the key `next`
 *
 * A checkpoint at size n is linked into the chain: record n+1's prev is not record n's hash
 * but SHA-256(0x01 ‖ hash(n) ‖ SHA-256(checkpoint text)), the RFC 6962 interior-node hash of
 * the two, so removing a checkpoint breaks the link of the record after it. Every checkpoint
 * is also appended to `<ledger>.checkpoints` (checkpoint-log.ts).
 *
 * <seq> and <size> are 16 zero-padded decimal digits, so LevelDB's byte order is number order
 * and verify walks the chain with one forward iterator.
 *
 * Record value (66 bytes of header, then the body):
 *
 *   [0]        format version (1)
 *   [1, 33)    hash = SHA-256(0x00 ‖ prev ‖ body), the RFC 6962 leaf hash of prev ‖ body
 *   [33]       0x00, the leaf prefix itself
 *   [34, 66)   prev = hash of record seq-1; for record 1, SHA-256("op ledger genesis\n" ‖ origin)
 *   [66, ...)  body = RFC 8785 canonical JSON (UTF-8) of
 *              {action, changes?, error?, host, plugin, run, seq, settles?, status, target,
 *              time}
 *
 * Bytes [33, end) are exactly the leaf-hash input, so verify hashes a view of the stored value:
 * no copy, and no JSON parsing. The chain position is the key; a body's own `seq` is only read
 * by show/log, which refuse a record whose body disagrees with its key.
 *
 * Export (one line per record) is the body's fields plus "prev" and "hash" (hex), canonical
 * JSON; to check a line elsewhere, drop prev and hash, canonicalize, and hash as above.
 */
import { canonicalJson, HASH_BYTES, sha256, sha256Latin1 } from "./hash.js";

/**
 * `unknown`: the host may or may not have changed (op lost the daemon after sending the
 * request; `error` says why). `settled`: a later run settled an intent that had no final
 * outcome (`settles` is its seq; `error` or `changes` say how). `drift`: a check (or `op watch
 * --observe`) found the resource differing from the file and changed nothing (`changes` says
 * what differs). `flapping`: `op watch` stopped enforcing a resource that something else keeps
 * undoing (`error` says why). Neither opens nor closes an intent.
 */
export type RecordStatus =
  | "intent"
  | "ok"
  | "failed"
  | "unknown"
  | "settled"
  | "drift"
  | "flapping";

export interface RecordInput {
  /** Run id (one per `op apply`). */
  run: string;
  /** "nftables", "lxc", ... */
  plugin: string;
  action: "create" | "modify" | "adopt" | "delete";
  /** Resource id, e.g. "inet/op_demo". */
  target: string;
  /** JSON-able: FieldChange[] or the created object. */
  changes?: unknown;
  status: RecordStatus;
  /** For "failed" and "unknown" (why), or "settled". */
  error?: string;
  /** For "settled": the seq of the intent this record settles. */
  settles?: number;
}

export interface LedgerRecord extends RecordInput {
  seq: number;
  time: string;
  host: string;
}

export const FORMAT = "2";
/** The format before checkpoints were linked into the chain; upgraded when opened to write. */
export const FORMAT_UNLINKED = "1";
export const RECORD_VERSION = 1;
export const FORMAT_KEY = "m!format";
export const ORIGIN_KEY = "m!origin";
export const HEAD_KEY = "m!head";
export const LINKED_KEY = "m!linked";

const SEQ_DIGITS = 16;
const RECORD_PREFIX = "r!";
const CHECKPOINT_PREFIX = "c!";
const PENDING_PREFIX = "p!";
const ROTATION_PREFIX = "k!";

/** Offsets in a record value. */
export const HASH_AT = 1;
export const LEAF_AT = 1 + HASH_BYTES;
export const PREV_AT = LEAF_AT + 1;
export const BODY_AT = PREV_AT + HASH_BYTES;

export function recordKey(seq: number): string {
  return RECORD_PREFIX + String(seq).padStart(SEQ_DIGITS, "0");
}

export function checkpointKey(size: number): string {
  return CHECKPOINT_PREFIX + String(size).padStart(SEQ_DIGITS, "0");
}

export function pendingKey(seq: number): string {
  return PENDING_PREFIX + String(seq).padStart(SEQ_DIGITS, "0");
}

export function rotationKey(seq: number): string {
  return ROTATION_PREFIX + String(seq).padStart(SEQ_DIGITS, "0");
}

/** ":" sorts right after "9", so these ranges hold exactly the numbered keys. */
export const RECORD_RANGE = { gte: `${RECORD_PREFIX}0`, lt: `${RECORD_PREFIX}:` };
export const CHECKPOINT_RANGE = { gte: `${CHECKPOINT_PREFIX}0`, lt: `${CHECKPOINT_PREFIX}:` };
export const PENDING_RANGE = { gte: `${PENDING_PREFIX}0`, lt: `${PENDING_PREFIX}:` };
export const ROTATION_RANGE = { gte: `${ROTATION_PREFIX}0`, lt: `${ROTATION_PREFIX}:` };

/** The prev of the record after a checkpoint: SHA-256(0x01 ‖ hash ‖ SHA-256(checkpoint text)). */
export function checkpointLink(hash: Uint8Array, checkpointText: string): Buffer {
  return sha256(
    Buffer.concat([Buffer.from([1]), hash, sha256(Buffer.from(checkpointText, "utf8"))]),
  );
}

/** The seq of a record key, or -1: verify's per-record check, so a loop over char codes. */
export function recordKeySeq(key: string): number {
  if (key.length !== RECORD_PREFIX.length + SEQ_DIGITS || !key.startsWith(RECORD_PREFIX)) return -1;
  let seq = 0;
  for (let i = RECORD_PREFIX.length; i < key.length; i++) {
    const digit = key.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    seq = seq * 10 + digit;
  }
  return seq;
}

const NUMBERED = /^[rcpk]!(\d{16})$/;

/** The number in an `r!`, `c!`, `p!` or `k!` key, or undefined when the key is not one of ours. */
export function keyNumber(key: string): number | undefined {
  const match = NUMBERED.exec(key);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * A record's body: exactly canonicalJson(record) (a test holds it to that), written out by hand
 * because the top-level keys are fixed and generic canonicalization of the whole record was
 * most of an append's CPU time. Keys in RFC 8785 order; absent changes/error are omitted.
 */
export function recordBody(record: LedgerRecord): string {
  const { changes, error, settles } = record;
  return `{"action":${canonicalJson(record.action)}${
    changes === undefined ? "" : `,"changes":${canonicalJson(changes)}`
  }${error === undefined ? "" : `,"error":${canonicalJson(error)}`},"host":${canonicalJson(
    record.host,
  )},"plugin":${canonicalJson(record.plugin)},"run":${canonicalJson(record.run)},"seq":${canonicalJson(
    record.seq,
  )}${settles === undefined ? "" : `,"settles":${canonicalJson(settles)}`},"status":${canonicalJson(record.status)},"target":${canonicalJson(
    record.target,
  )},"time":${canonicalJson(record.time)}}`;
}

/**
 * Builds a record value; returns it with the record's hash (a view into the value). The digest
 * comes back as a latin1 string written straight into place: no Buffer per hash.
 */
export function encodeRecord(prev: Uint8Array, body: string): { value: Buffer; hash: Buffer } {
  const value = Buffer.allocUnsafe(BODY_AT + Buffer.byteLength(body, "utf8"));
  value[0] = RECORD_VERSION;
  value[LEAF_AT] = 0;
  value.set(prev, PREV_AT);
  value.write(body, BODY_AT, "utf8");
  value.write(sha256Latin1(value.subarray(LEAF_AT)), HASH_AT, "latin1");
  return { value, hash: value.subarray(HASH_AT, LEAF_AT) };
}

export interface DecodedRecord {
  version: number;
  hash: Buffer;
  prev: Buffer;
  body: string;
}

/** Splits a record value (views, no checks beyond its length). */
export function decodeRecord(value: Buffer): DecodedRecord | undefined {
  if (value.length < BODY_AT) return undefined;
  return {
    version: value[0] ?? 0,
    hash: value.subarray(HASH_AT, HASH_AT + HASH_BYTES),
    prev: value.subarray(PREV_AT, PREV_AT + HASH_BYTES),
    body: value.toString("utf8", BODY_AT),
  };
}

export function encodeHead(seq: number, hash: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(8 + HASH_BYTES);
  value.writeBigUInt64BE(BigInt(seq), 0);
  value.set(hash, 8);
  return value;
}

export function decodeHead(value: Buffer): { seq: number; hash: Buffer } | undefined {
  if (value.length !== 8 + HASH_BYTES) return undefined;
  return { seq: Number(value.readBigUInt64BE(0)), hash: value.subarray(8) };
}
