/**
 * op's audit ledger: an append-only, SHA-256-chained log of every step op takes (an `intent`
 * before a host change, an `ok` / `failed` outcome after it) in an embedded LevelDB, with signed
 * checkpoints. The byte format is described in store.ts.
 *
 * Durability: each record, the head pointer and the pending-intent index go in one atomic
 * batch, not synced (an fsync per record would dominate a run); a process crash still leaves
 * every written record, as LevelDB has handed it to the kernel. `checkpoint()` writes with
 * sync, which syncs LevelDB's log and so every record before it, then appends the checkpoint,
 * synced, to the checkpoint log: op calls it at the end of each run.
 *
 * Damage: a writing open checks the tail first (tail.ts) and refuses a damaged ledger with
 * exit 3; nothing here ever rebuilds, truncates or re-keys one (see repair.ts for the explicit
 * way on).
 */
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { Level } from "level";
import { OpError } from "../errors.js";
import { traced } from "../trace.js";
import { signCheckpoint } from "./checkpoint.js";
import {
  appendCheckpointLog,
  checkpointLogPath,
  lastLoggedCheckpoint,
  loggedCheckpoints,
} from "./checkpoint-log.js";
import { getPublicKey, signMessage } from "./ed25519.js";
import { canonicalJson, genesisHash } from "./hash.js";
import {
  createSigningKey,
  encodeKey,
  installStagedKey,
  loadPublicKey,
  readSigningSecret,
  type SecretState,
  type SigningKey,
  stageSigningKey,
  writePublicKey,
} from "./keys.js";
import { cannotWrite, openReadOnlyView, removeView } from "./read-only.js";
import { corruptLedger, storageError, storageFault } from "./storage.js";
import {
  CHECKPOINT_RANGE,
  checkpointKey,
  checkpointLink,
  decodeRecord,
  encodeHead,
  encodeRecord,
  FORMAT,
  FORMAT_KEY,
  FORMAT_UNLINKED,
  HASH_AT,
  HEAD_KEY,
  keyNumber,
  LEAF_AT,
  type LedgerRecord,
  LINKED_KEY,
  ORIGIN_KEY,
  PENDING_RANGE,
  pendingKey,
  RECORD_RANGE,
  RECORD_VERSION,
  type RecordInput,
  ROTATION_RANGE,
  recordBody,
  recordKey,
  rotationKey,
} from "./store.js";
import { checkTail } from "./tail.js";
import {
  type LedgerDb,
  type Rotation,
  rotationProblem,
  signerAt,
  type VerifyReport,
  verifyChain,
} from "./verify.js";

export type { LedgerRecord, RecordInput, RecordStatus } from "./store.js";

/** What writing one record gave: its place in the chain, or why it was refused. */
type Written = { seq: number; hash: string } | { error: unknown };

export interface LedgerOptions {
  /** Ed25519 secret that signs checkpoints, kept outside the database. */
  keyFile: string;
  /** Name bound into record 1's prev; default `op@<hostname>`. Fixed when the ledger is created. */
  origin?: string;
  /** The `host` field of records; default the hostname. */
  host?: string;
  clock?: () => Date;
  /**
   * false: open an existing ledger only, never create a key, and check nothing before use (for
   * log/show/verify/export, which report damage rather than refuse it). Default true: the
   * ledger's tail is checked before anything is written (see tail.ts).
   */
  create?: boolean;
  /**
   * With `create: false`: read through a view of the files (read-only.ts) even when the
   * directory is writable, so that a reader (op status) neither waits for nor disturbs a run
   * that holds the database open.
   */
  view?: boolean;
}

export interface RecordFilter {
  plugin?: string;
  since?: Date;
  limit?: number;
  /** Newest first (with `limit`: the latest records). */
  reverse?: boolean;
}

/** An intent with no `ok`, `failed` or `settled` outcome (none, or only `unknown`). */
export interface PendingIntent {
  seq: number;
  run: string;
  plugin: string;
  action: "create" | "modify" | "adopt" | "delete";
  target: string;
  status: "intent" | "unknown";
  error?: string;
}

export type { VerifyReport } from "./verify.js";

const READ_BATCH = 500;
/** The plugin and target of the record a key rotation writes. */
const LEDGER_PLUGIN = "ledger";
const KEY_TARGET = "signing-key";

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** LevelDB's own files: a directory holding any of them is a database, whole or damaged. */
const LEVELDB_FILE = /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

/**
 * Whether `dir` holds a LevelDB database. A directory with LevelDB's files but no `CURRENT`
 * is a damaged database, not a missing one; and a checkpoint log without its ledger means the
 * ledger was removed: both are refused, so op never starts a fresh ledger over the evidence.
 */
function existsLedger(dir: string): boolean {
  try {
    statSync(join(dir, "CURRENT"));
    return true;
  } catch (error) {
    if (errnoCode(error) !== "ENOENT" && errnoCode(error) !== "ENOTDIR") throw error;
  }
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) !== "ENOENT" && errnoCode(error) !== "ENOTDIR") throw error;
  }
  const leftover = names.filter((name) => LEVELDB_FILE.test(name));
  if (leftover.length > 0) {
    throw corruptLedger(
      dir,
      `it holds LevelDB files (${leftover.slice(0, 3).join(", ")}${leftover.length > 3 ? ", ..." : ""}) but no CURRENT file`,
    );
  }
  if (lastLoggedCheckpoint(checkpointLogPath(dir))) {
    throw corruptLedger(
      dir,
      `it is missing, but its checkpoint log ${checkpointLogPath(dir)} is there`,
    );
  }
  return false;
}

/** What a failure to create or open the database means to the user. */
function openError(error: unknown, dir: string): unknown {
  const mapped = storageError(error, dir, "open");
  if (mapped instanceof OpError) return mapped;
  const cause = (error as { cause?: unknown }).cause ?? error;
  const code = errnoCode(cause) ?? errnoCode(error);
  const detail = (cause as Error).message ?? String(cause);
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new OpError("permission-denied", `cannot open the ledger ${dir}: ${detail}`, {
      hint: "run op as root, or point it at a directory it may write (--ledger)",
      cause: error,
    });
  }
  return new OpError("invalid-state", `cannot open the ledger ${dir}: ${detail}`, {
    hint: "the ledger path must be a directory op can create and write",
    cause: error,
  });
}

function validOrigin(origin: string): string {
  // A newline would let an origin forge extra lines in checkpoint text.
  if (origin.length === 0 || [...origin].some((c) => c < " " || c === "\u007f")) {
    throw new OpError("usage", `ledger origin ${JSON.stringify(origin)} must be a non-empty line`, {
      hint: "the default is op@<hostname>",
    });
  }
  return origin;
}

function parseRecord(key: string, value: Buffer): LedgerRecord & { hash: string; prev: string } {
  const seq = keyNumber(key) ?? Number.NaN;
  const decoded = decodeRecord(value);
  const corrupt = (why: string) =>
    new OpError("ledger-corrupt", `ledger record ${seq}: ${why}`, {
      hint: "run `op ledger verify` to find where the ledger was altered",
    });
  if (decoded === undefined || decoded.version !== RECORD_VERSION)
    throw corrupt("unreadable value");
  let body: LedgerRecord;
  try {
    body = JSON.parse(decoded.body) as LedgerRecord;
  } catch {
    throw corrupt("its body is not JSON");
  }
  if (body.seq !== seq) throw corrupt(`its body says seq ${body.seq}`);
  return { ...body, hash: decoded.hash.toString("hex"), prev: decoded.prev.toString("hex") };
}

/** Intents are matched with their outcome by run, plugin, action and target. */
function intentKey(input: Pick<RecordInput, "run" | "plugin" | "action" | "target">): string {
  return `${input.run}\u0000${input.plugin}\u0000${input.action}\u0000${input.target}`;
}

/**
 * A pending index entry `p!<seq of the intent>` holds nothing, or the seq of the `unknown`
 * record that followed it: the records themselves say the rest, so an intent costs its batch
 * one small key.
 */
const EMPTY = Buffer.alloc(0);

/** Key rotations by the seq of the record that made them, oldest first. */
async function readRotations(db: LedgerDb): Promise<Rotation[]> {
  const rotations: Rotation[] = [];
  for await (const [key, value] of db.iterator(ROTATION_RANGE)) {
    const { previous, next, endorsement } = JSON.parse(value.toString("utf8")) as Rotation;
    rotations.push({ seq: keyNumber(key) ?? 0, previous, next, endorsement });
  }
  return rotations;
}

/** Changes to a map of open intents, kept apart until `apply` (see Ledger.write). */
class IntentChanges {
  private readonly changes = new Map<string, number | undefined>();
  private readonly base: Map<string, number>;

  constructor(base: Map<string, number>) {
    this.base = base;
  }

  get(key: string): number | undefined {
    return this.changes.has(key) ? this.changes.get(key) : this.base.get(key);
  }

  set(key: string, seq: number): void {
    this.changes.set(key, seq);
  }

  delete(key: string): void {
    this.changes.set(key, undefined);
  }

  /** Forgets the intent with this seq (a settled record names it by seq). */
  deleteSeq(seq: number): void {
    for (const [key, value] of this.changes) if (value === seq) this.changes.set(key, undefined);
    for (const [key, value] of this.base) if (value === seq) this.changes.set(key, undefined);
  }

  apply(): void {
    for (const [key, value] of this.changes) {
      if (value === undefined) this.base.delete(key);
      else this.base.set(key, value);
    }
  }
}

interface Opened {
  db: LedgerDb;
  dir: string;
  origin: string;
  head: { seq: number; hash: Buffer; link: Buffer };
  lastCheckpoint: number | undefined;
  linkedFrom: number;
  rotations: Rotation[];
  secret: Uint8Array | undefined;
  /** Its public half, when the checks already derived it. */
  publicKey?: Uint8Array;
}

export class Ledger {
  readonly origin: string;
  readonly dir: string;
  readonly keyFile: string;
  private readonly db: LedgerDb;
  private readonly host: string;
  private readonly clock: () => Date;
  private readonly writable: boolean;
  /** The private directory a read-only view of the database lives in, if opened that way. */
  private view: string | undefined;
  private signingKey: SigningKey | undefined;
  /** The checked secret, until the first checkpoint derives its public half. */
  private signingSecret: Uint8Array | undefined;
  private readonly derivedPublicKey: Uint8Array | undefined;
  private headSeq: number;
  private headHash: Buffer;
  /** prev of the next record: the head's hash, linked with a checkpoint at the head if any. */
  private linkHash: Buffer;
  private lastCheckpoint: number | undefined;
  private readonly linkedFrom: number;
  private readonly rotations: Rotation[];
  /** This process's intents without a final outcome, by intentKey: their seq. */
  private readonly openIntents = new Map<string, number>();
  /** Appends, checkpoints and verify run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Appends waiting for the next batch (see `append`). */
  private readonly waiting: {
    input: RecordInput;
    resolve: (written: { seq: number; hash: string }) => void;
    reject: (error: unknown) => void;
  }[] = [];

  private constructor(opened: Opened, options: LedgerOptions, writable: boolean) {
    this.db = opened.db;
    this.dir = opened.dir;
    this.origin = opened.origin;
    this.keyFile = options.keyFile;
    this.host = options.host ?? hostname();
    this.clock = options.clock ?? (() => new Date());
    this.writable = writable;
    this.headSeq = opened.head.seq;
    this.headHash = opened.head.hash;
    this.linkHash = opened.head.link;
    this.lastCheckpoint = opened.lastCheckpoint;
    this.linkedFrom = opened.linkedFrom;
    this.rotations = opened.rotations;
    this.signingSecret = opened.secret;
    this.derivedPublicKey = opened.publicKey;
  }

  static async open(dir: string, options: LedgerOptions): Promise<Ledger> {
    const location = resolve(dir);
    const create = options.create ?? true;
    // Synchronous on purpose: apply opens the ledger while its queries keep the thread busy,
    // and each awaited call would wait for a free turn of it before LevelDB could start.
    // These are a few metadata calls on a local directory (microseconds).
    let secret: SecretState | undefined;
    try {
      const exists = existsLedger(location);
      if (!create && !exists) {
        throw new OpError("invalid-state", `there is no ledger at ${location}`, {
          hint: "op creates it on the first `op apply`; check the --ledger path",
        });
      }
      if (create) mkdirSync(location, { recursive: true, mode: 0o700 });
      // The key is checked before anything else, so a bad key stops the run at once.
      if (create) secret = readSigningSecret(options.keyFile);
    } catch (error) {
      throw error instanceof OpError ? error : openError(error, location);
    }
    // LevelDB writes when it opens (it turns its log into a table): on a full or read-only
    // file system a reading command opens a view of the files instead, writing nothing.
    // (Decided before the database object exists: abstract-level opens it by itself.)
    if (!create && (options.view === true || cannotWrite(location))) {
      const view = await openReadOnlyView(location).catch((viewError: unknown) => {
        throw openError(viewError, location);
      });
      return Ledger.openView(view, location, options);
    }
    const db: LedgerDb = new Level<string, Buffer>(location, {
      keyEncoding: "utf8",
      valueEncoding: "buffer",
      createIfMissing: create,
    });
    try {
      await traced("leveldb open", () => db.open());
    } catch (error) {
      // A file system that filled up since the check above: the same view.
      const fault = storageFault(error);
      if (create || (fault !== "ENOSPC" && fault !== "EDQUOT" && fault !== "EROFS")) {
        throw openError(error, location);
      }
      const view = await openReadOnlyView(location).catch((viewError: unknown) => {
        throw openError(viewError, location);
      });
      return Ledger.openView(view, location, options);
    }
    try {
      const opened = await Ledger.load(db, location, options, secret);
      return new Ledger(opened, options, create);
    } catch (error) {
      await db.close();
      throw storageError(error, location, create ? "open" : "read");
    }
  }

  /** A reading ledger over a view of the database (see read-only.ts); removed on close. */
  private static async openView(
    view: string,
    location: string,
    options: LedgerOptions,
  ): Promise<Ledger> {
    const db: LedgerDb = new Level<string, Buffer>(view, {
      keyEncoding: "utf8",
      valueEncoding: "buffer",
      createIfMissing: false,
    });
    try {
      await db.open();
      const opened = await Ledger.load(db, location, options, undefined);
      const ledger = new Ledger(opened, options, false);
      ledger.view = view;
      return ledger;
    } catch (error) {
      await db.close().catch(() => {});
      removeView(view);
      throw storageError(error, location, "read");
    }
  }

  /** Reads the metadata; a writing open also checks the tail and settles the key. */
  private static async load(
    db: LedgerDb,
    dir: string,
    options: LedgerOptions,
    secret: SecretState | undefined,
  ): Promise<Opened> {
    const { origin, linkedFrom, logRequired } = await Ledger.initialise(
      db,
      dir,
      options,
      secret !== undefined,
    );
    const rotations = await readRotations(db);
    if (secret === undefined) {
      const head = await Ledger.lastRecord(db, origin);
      const [last] = await db.keys({ ...CHECKPOINT_RANGE, reverse: true, limit: 1 }).all();
      return {
        db,
        dir,
        origin,
        head: { ...head, link: head.hash },
        lastCheckpoint: last === undefined ? undefined : keyNumber(last),
        linkedFrom,
        rotations,
        secret: undefined,
      };
    }
    const log = checkpointLogPath(dir);
    const logged = lastLoggedCheckpoint(log);
    const [anyCheckpoint] = await db.keys({ ...CHECKPOINT_RANGE, limit: 1 }).all();
    const signed = anyCheckpoint !== undefined || Boolean(logged);
    const key = Ledger.settleKey(options.keyFile, secret, signed, dir);
    // Derived once (an OpenSSL key set-up) only when a checkpoint or rotation needs it.
    let derived: Uint8Array | undefined;
    const publicKey = () => {
      derived ??= getPublicKey(key);
      return derived;
    };
    const tail = await traced("ledger tail check", () =>
      checkTail({
        db,
        dir,
        origin,
        linkedFrom,
        logged,
        logRequired,
        publicKey: (size) => {
          const signer = signerAt(rotations, size, undefined);
          return signer === undefined ? publicKey() : Buffer.from(signer, "base64");
        },
      }),
    );
    const last = rotations.at(-1);
    if (last !== undefined) {
      const currentKey = encodeKey(publicKey());
      // Without the current key's countersignature, a rotation could be forged by anyone
      // who wants checkpoints before it checked with a key of their own.
      const problem =
        last.next !== currentKey
          ? `its signing key ${options.keyFile} is not the one its last key rotation (record ${last.seq}) installed (an interrupted rotation leaves it at ${options.keyFile}.next)`
          : rotationProblem(
              last,
              undefined,
              (await db.get(checkpointKey(last.seq)))?.toString("utf8"),
            );
      if (problem !== undefined) throw corruptLedger(dir, problem);
    }
    // A crash between the ledger's checkpoint and the log's copy of it: the copy is completed.
    if (tail.logBehind && tail.checkpoint !== undefined)
      appendCheckpointLog(log, tail.checkpoint.text);
    return {
      db,
      dir,
      origin,
      head: { seq: tail.size, hash: tail.head, link: tail.link },
      lastCheckpoint: tail.checkpoint?.size,
      linkedFrom,
      rotations,
      secret: key,
      ...(derived === undefined ? {} : { publicKey: derived }),
    };
  }

  /**
   * The secret to sign with. A missing or empty key is made anew only while no checkpoint
   * exists: once one does, a new key could never verify it, so the loss is refused.
   */
  private static settleKey(
    keyFile: string,
    secret: SecretState,
    signed: boolean,
    dir: string,
  ): Uint8Array {
    if (secret.state === "present") return secret.secret;
    if (signed) {
      const why =
        secret.state === "missing"
          ? `its signing key ${keyFile} is missing but the ledger has checkpoints signed with it`
          : `its signing key ${keyFile} is empty (left by an op that ran out of disk space while creating it) but the ledger has checkpoints signed with it`;
      throw new OpError("ledger-corrupt", `the ledger ${dir} cannot be signed: ${why}`, {
        hint: `restore ${keyFile} from a backup (its public half is ${keyFile}.pub); a new key cannot sign for the old checkpoints. To start over, \`op ledger repair\` keeps this ledger aside and starts a new one`,
      });
    }
    return createSigningKey(keyFile, secret.state === "empty").secretKey;
  }

  /** Reads (or, for a new ledger, writes) the format and origin; upgrades a format-1 ledger. */
  private static async initialise(
    db: LedgerDb,
    dir: string,
    options: LedgerOptions,
    writing: boolean,
  ): Promise<{ origin: string; linkedFrom: number; logRequired: boolean }> {
    const [format, stored, linked] = await db.getMany([FORMAT_KEY, ORIGIN_KEY, LINKED_KEY]);
    const formatText = format?.toString("utf8");
    if (formatText !== undefined && formatText !== FORMAT && formatText !== FORMAT_UNLINKED) {
      throw new OpError(
        "invalid-state",
        `the ledger ${dir} has format ${formatText}, this op reads formats ${FORMAT_UNLINKED} and ${FORMAT}`,
        { hint: "use the op version that wrote it" },
      );
    }
    const wanted = options.origin === undefined ? undefined : validOrigin(options.origin);
    if (stored !== undefined) {
      const origin = stored.toString("utf8");
      if (wanted !== undefined && wanted !== origin) {
        throw new OpError(
          "invalid-state",
          `the ledger ${dir} belongs to origin ${origin}, not ${wanted}`,
          {
            hint: "an origin is fixed when its ledger is created; use another ledger directory",
          },
        );
      }
      if (formatText === FORMAT_UNLINKED) {
        if (!writing) return { origin, linkedFrom: Number.POSITIVE_INFINITY, logRequired: false };
        return { origin, linkedFrom: await Ledger.upgrade(db, origin), logRequired: false };
      }
      return {
        origin,
        linkedFrom: linked === undefined ? 0 : Number(linked.toString("utf8")),
        logRequired: true,
      };
    }
    const [anyRecord] = await db.keys({ ...RECORD_RANGE, limit: 1 }).all();
    if (anyRecord !== undefined) {
      throw corruptLedger(dir, "it has records but no origin (its metadata was removed)");
    }
    // An empty database beside a checkpoint log with checkpoints lost everything it held.
    if (writing && lastLoggedCheckpoint(checkpointLogPath(dir))) {
      throw corruptLedger(
        dir,
        `it holds no records, but its checkpoint log ${checkpointLogPath(dir)} has checkpoints (everything was lost)`,
      );
    }
    const origin = wanted ?? `op@${hostname()}`;
    await db.batch(
      [
        { type: "put", key: FORMAT_KEY, value: Buffer.from(FORMAT) },
        { type: "put", key: ORIGIN_KEY, value: Buffer.from(origin, "utf8") },
        { type: "put", key: LINKED_KEY, value: Buffer.from("0") },
      ],
      { sync: true },
    );
    return { origin, linkedFrom: 0, logRequired: true };
  }

  /**
   * A format-1 ledger (before linked checkpoints and the pending index): checkpoints from its
   * current size on are linked, and the index of intents without an outcome is built by one
   * scan, all in one batch with the new format.
   */
  private static async upgrade(db: LedgerDb, origin: string): Promise<number> {
    const { seq } = await Ledger.lastRecord(db, origin);
    const open = new Map<string, { seq: number }>();
    for await (const [key, value] of db.iterator(RECORD_RANGE)) {
      const record = parseRecord(key, value);
      const match = intentKey(record);
      if (record.status === "intent") open.set(match, { seq: record.seq });
      else if (record.status === "ok" || record.status === "failed") open.delete(match);
    }
    await db.batch(
      [
        ...[...open.values()].map((entry) => ({
          type: "put" as const,
          key: pendingKey(entry.seq),
          value: EMPTY,
        })),
        { type: "put", key: LINKED_KEY, value: Buffer.from(String(seq)) },
        { type: "put", key: FORMAT_KEY, value: Buffer.from(FORMAT) },
      ],
      { sync: true },
    );
    return seq;
  }

  /** The last record actually stored (the tail check holds the head pointer to it). */
  private static async lastRecord(
    db: LedgerDb,
    origin: string,
  ): Promise<{ seq: number; hash: Buffer }> {
    const [last] = await db.iterator({ ...RECORD_RANGE, reverse: true, limit: 1 }).all();
    if (last === undefined) return { seq: 0, hash: genesisHash(origin) };
    const [key, value] = last;
    const seq = keyNumber(key);
    if (seq === undefined || value.length < LEAF_AT) {
      throw new OpError("ledger-corrupt", `the last ledger record (${key}) is unreadable`, {
        hint: "run `op ledger verify` to find where the ledger was altered",
      });
    }
    return { seq, hash: Buffer.from(value.subarray(HASH_AT, LEAF_AT)) };
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async size(): Promise<number> {
    return this.enqueue(async () => this.headSeq);
  }

  /** The last record's seq and hash (hex); seq 0 for an empty ledger. */
  async head(): Promise<{ seq: number; hash: string }> {
    return this.enqueue(async () => ({ seq: this.headSeq, hash: this.headHash.toString("hex") }));
  }

  /**
   * Appends one record. Appends that arrive while a batch is being written are written
   * together in the next one (group commit): each record is still on disk, chained and with
   * the head, before its promise resolves, but 200 concurrent steps cost a few LevelDB
   * batches rather than 200.
   */
  append(input: RecordInput): Promise<{ seq: number; hash: string }> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (this.waiting.length === 1) void this.enqueue(() => this.flushWaiting());
    });
  }

  private async flushWaiting(): Promise<void> {
    const group = this.waiting.splice(0);
    try {
      const results = await this.write(group.map(({ input }) => input));
      group.forEach(({ resolve, reject }, i) => {
        const result = results[i] as Written;
        if ("error" in result) reject(result.error);
        else resolve(result);
      });
    } catch (error) {
      for (const { reject } of group) reject(error);
    }
  }

  /**
   * Appends many records in one batch (one chain, same format as `append`). For importing and
   * for building large ledgers in benchmarks; op's engine appends one record per step.
   */
  appendMany(inputs: readonly RecordInput[]): Promise<{ seq: number; hash: string }[]> {
    return this.enqueue(async () => {
      const results = await this.write(inputs);
      const refused = results.find((result) => "error" in result);
      if (refused !== undefined && "error" in refused) throw refused.error;
      return results as { seq: number; hash: string }[];
    });
  }

  /**
   * Writes the records that can be encoded, chained, with the head and the pending-intent
   * index, in one atomic batch. A record with no canonical JSON form is left out (its result
   * carries the error) and takes no seq, so the chain stays whole.
   */
  private async write(
    inputs: readonly RecordInput[],
    /** More operations for the same batch, given the last record's seq. */
    extra?: (seq: number) => { type: "put"; key: string; value: Buffer }[],
  ): Promise<Written[]> {
    if (!this.writable) {
      throw new OpError("usage", `the ledger ${this.dir} was opened to read only`, {
        hint: "this is a bug in op: a reading command tried to write",
      });
    }
    const operations: (
      | { type: "put"; key: string; value: Buffer }
      | { type: "del"; key: string }
    )[] = [];
    const results: Written[] = [];
    // This batch's changes to openIntents, applied once it is written (a copy of the whole
    // map per batch would grow with every intent a long-lived process keeps open).
    const intents = new IntentChanges(this.openIntents);
    let seq = this.headSeq;
    let prev = this.linkHash;
    let last = this.headHash;
    for (const input of inputs) {
      let body: string;
      try {
        body = this.body(seq + 1, input);
      } catch (error) {
        results.push({ error });
        continue;
      }
      seq++;
      const { value, hash } = encodeRecord(prev, body);
      operations.push({ type: "put", key: recordKey(seq), value });
      operations.push(...this.indexOperations(input, seq, intents));
      results.push({ seq, hash: hash.toString("hex") });
      prev = hash;
      last = hash;
    }
    if (seq === this.headSeq) return results;
    operations.push({ type: "put", key: HEAD_KEY, value: encodeHead(seq, last) });
    if (extra !== undefined) operations.push(...extra(seq));
    try {
      await this.db.batch(operations);
    } catch (error) {
      throw storageError(error, this.dir, "write to");
    }
    this.headSeq = seq;
    this.headHash = Buffer.from(last);
    this.linkHash = this.headHash;
    intents.apply();
    return results;
  }

  /** The pending index's change for one record (intents: `p!<seq>`, removed by an outcome). */
  private indexOperations(
    input: RecordInput,
    seq: number,
    intents: IntentChanges,
  ): ({ type: "put"; key: string; value: Buffer } | { type: "del"; key: string })[] {
    const match = intentKey(input);
    switch (input.status) {
      case "intent":
        intents.set(match, seq);
        return [
          {
            type: "put",
            key: pendingKey(seq),
            value: EMPTY,
          },
        ];
      case "unknown": {
        // Still pending: now with why op cannot know. An `unknown` with no intent of this
        // process before it is itself what a later run must settle.
        const intent = intents.get(match) ?? seq;
        intents.set(match, intent);
        return [
          {
            type: "put",
            key: pendingKey(intent),
            // The record that says why: pending() reads its error.
            value: Buffer.from(String(seq)),
          },
        ];
      }
      case "ok":
      case "failed": {
        const intent = intents.get(match);
        if (intent === undefined) return [];
        intents.delete(match);
        return [{ type: "del", key: pendingKey(intent) }];
      }
      case "settled": {
        const settles = input.settles as number;
        intents.deleteSeq(settles);
        return [{ type: "del", key: pendingKey(settles) }];
      }
      case "drift":
      case "flapping":
        return [];
    }
  }

  private body(seq: number, input: RecordInput): string {
    if (input.status === "settled") {
      const { settles } = input;
      if (
        settles === undefined ||
        !Number.isSafeInteger(settles) ||
        settles < 1 ||
        settles >= seq
      ) {
        throw new OpError(
          "invalid-state",
          `a settled record for ${input.plugin} ${input.target} must name an earlier intent (settles: ${settles})`,
          {
            hint: "this is a bug in what op recorded; please report it",
            context: { plugin: input.plugin, id: input.target, phase: "ledger" },
          },
        );
      }
    }
    const record: LedgerRecord = {
      seq,
      time: this.clock().toISOString(),
      host: this.host,
      run: input.run,
      plugin: input.plugin,
      action: input.action,
      target: input.target,
      changes: input.changes,
      status: input.status,
      error: input.error,
      ...(input.status === "settled" ? { settles: input.settles } : {}),
    };
    try {
      return recordBody(record);
    } catch (error) {
      throw new OpError(
        "invalid-state",
        `ledger record for ${input.plugin} ${input.target} has no canonical JSON form: ${(error as Error).message}`,
        {
          hint: "this is a bug in what op recorded; please report it",
          context: { plugin: input.plugin, id: input.target, phase: "ledger" },
          cause: error,
        },
      );
    }
  }

  private async record(seq: number): Promise<LedgerRecord> {
    const value = await this.db.get(recordKey(seq));
    if (value === undefined) {
      throw corruptLedger(this.dir, `record ${seq}, which its pending index names, is missing`);
    }
    return parseRecord(recordKey(seq), value);
  }

  private async pendingIntent(key: string, value: Buffer): Promise<PendingIntent> {
    const { seq, run, plugin, action, target } = await this.record(keyNumber(key) ?? 0);
    if (value.length === 0) return { seq, run, plugin, action, target, status: "intent" };
    const { error } = await this.record(Number(value.toString("utf8")));
    return {
      seq,
      run,
      plugin,
      action,
      target,
      status: "unknown",
      ...(error === undefined ? {} : { error }),
    };
  }

  /** Intents of this or earlier runs that have no final outcome, oldest first. */
  pending(): Promise<PendingIntent[]> {
    return this.enqueue(async () => {
      try {
        const entries = await this.db.iterator(PENDING_RANGE).all();
        return await Promise.all(entries.map(([key, value]) => this.pendingIntent(key, value)));
      } catch (error) {
        throw storageError(error, this.dir, "read");
      }
    });
  }

  private key(): SigningKey {
    if (this.signingKey === undefined) {
      if (this.signingSecret === undefined) {
        throw new OpError("usage", `the ledger ${this.dir} was opened to read only`, {
          hint: "this is a bug in op: a reading command tried to sign",
        });
      }
      this.signingKey = {
        secretKey: this.signingSecret,
        publicKey: this.derivedPublicKey ?? getPublicKey(this.signingSecret),
      };
      writePublicKey(this.keyFile, this.signingKey.publicKey);
    }
    return this.signingKey;
  }

  /**
   * Signs (origin, size, head hash), stores it with a sync (which syncs every record written
   * before it) and appends it, synced, to the checkpoint log. The next record links to it. A
   * checkpoint already at this size is returned as it is.
   */
  checkpoint(): Promise<string> {
    return this.enqueue(() => this.sign());
  }

  /** Signs a checkpoint when records were written after the last one; whether it did. */
  checkpointIfUnsigned(): Promise<boolean> {
    return this.enqueue(async () => {
      if (this.headSeq === 0 || this.lastCheckpoint === this.headSeq) return false;
      await this.sign();
      return true;
    });
  }

  private async sign(): Promise<string> {
    if (this.lastCheckpoint === this.headSeq) {
      const existing = await this.db.get(checkpointKey(this.headSeq));
      if (existing !== undefined) return existing.toString("utf8");
    }
    const text = signCheckpoint(
      {
        origin: this.origin,
        size: this.headSeq,
        root: this.headHash.toString("hex"),
        time: this.clock().toISOString(),
      },
      this.key(),
    );
    try {
      await this.db.put(checkpointKey(this.headSeq), Buffer.from(text, "utf8"), { sync: true });
    } catch (error) {
      throw storageError(error, this.dir, "write to");
    }
    this.lastCheckpoint = this.headSeq;
    if (this.headSeq >= this.linkedFrom) this.linkHash = checkpointLink(this.headHash, text);
    appendCheckpointLog(checkpointLogPath(this.dir), text);
    return text;
  }

  /**
   * Replaces the signing key: a record naming the new public key is appended and signed with
   * the old key (so the old key vouches for the new one), then the new key is installed; the
   * old one is kept as `<keyFile>.old`. Returns the new public key (base64).
   */
  rotateKey(run: string): Promise<{ previous: string; next: string; seq: number }> {
    return this.enqueue(async () => {
      const old = this.key();
      // The new secret is on disk (`<keyFile>.next`) before the ledger names it, so a crash
      // in between never leaves a ledger that expects a key nobody has.
      const next = stageSigningKey(this.keyFile);
      const previous = encodeKey(old.publicKey);
      const nextText = encodeKey(next.publicKey);
      const [written] = await this.write(
        [
          {
            run,
            plugin: LEDGER_PLUGIN,
            action: "modify",
            target: KEY_TARGET,
            changes: [{ path: "publicKey", before: previous, after: nextText }],
            status: "ok",
          },
        ],
        (seq) => [
          {
            type: "put",
            key: rotationKey(seq),
            value: Buffer.from(JSON.stringify({ previous, next: nextText }), "utf8"),
          },
        ],
      );
      if (written === undefined || "error" in written) {
        throw (written as { error: unknown } | undefined)?.error;
      }
      const rotation: Rotation = { seq: written.seq, previous, next: nextText };
      this.rotations.push(rotation);
      // The old key signs the checkpoint over the record naming the new key; the new key
      // countersigns the same text, so no one without it can claim to be its predecessor.
      const text = await this.sign();
      rotation.endorsement = encodeKey(signMessage(Buffer.from(text, "utf8"), next.secretKey));
      try {
        await this.db.put(rotationKey(written.seq), Buffer.from(JSON.stringify(rotation)), {
          sync: true,
        });
      } catch (error) {
        throw storageError(error, this.dir, "write to");
      }
      installStagedKey(this.keyFile, next);
      this.signingKey = next;
      this.signingSecret = next.secretKey;
      return { previous, next: nextText, seq: written.seq };
    });
  }

  async latestCheckpoint(): Promise<string | undefined> {
    try {
      const [last] = await this.db.values({ ...CHECKPOINT_RANGE, reverse: true, limit: 1 }).all();
      return last?.toString("utf8");
    } catch (error) {
      throw storageError(error, this.dir, "read");
    }
  }

  /** Records in seq order (newest first with `reverse`). Reads only: verify checks them. */
  async *records(filter: RecordFilter = {}): AsyncIterable<LedgerRecord & { hash: string }> {
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return;
    const since = filter.since?.toISOString();
    let yielded = 0;
    for await (const [key, value] of this.entries(filter.reverse ?? false)) {
      const { prev: _prev, ...record } = parseRecord(key, value);
      if (filter.plugin !== undefined && record.plugin !== filter.plugin) continue;
      if (since !== undefined && record.time < since) continue;
      yield record;
      if (++yielded >= limit) return;
    }
  }

  private async *entries(reverse: boolean): AsyncIterable<[string, Buffer]> {
    const iterator = this.db.iterator({ ...RECORD_RANGE, reverse });
    try {
      for (;;) {
        let entries: [string, Buffer][];
        try {
          entries = await iterator.nextv(READ_BATCH);
        } catch (error) {
          throw storageError(error, this.dir, "read");
        }
        if (entries.length === 0) return;
        yield* entries;
      }
    } finally {
      await iterator.close();
    }
  }

  async show(seq: number): Promise<(LedgerRecord & { hash: string; prev: string }) | undefined> {
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new OpError("usage", `record number ${seq} is not a positive integer`, {
        hint: "records are numbered from 1; `op ledger log` lists them",
      });
    }
    let value: Buffer | undefined;
    try {
      value = await this.db.get(recordKey(seq));
    } catch (error) {
      throw storageError(error, this.dir, "read");
    }
    return value === undefined ? undefined : parseRecord(recordKey(seq), value);
  }

  /**
   * Checks the whole chain, every stored checkpoint, the checkpoint log and `trusted`
   * (checkpoint text kept outside the database). `hashWorker` forces where hashing runs
   * (tests); by default large ledgers hash on a worker thread.
   */
  verify(options: { trusted?: string; hashWorker?: boolean } = {}): Promise<VerifyReport> {
    return this.enqueue(async () => {
      const found =
        this.signingKey === undefined
          ? loadPublicKey(this.keyFile)
          : { publicKey: this.signingKey.publicKey, warnings: [] };
      try {
        const report = await verifyChain({
          db: this.db,
          origin: this.origin,
          publicKey: found.publicKey,
          keyFile: this.keyFile,
          linkedFrom: this.linkedFrom,
          rotations: this.rotations,
          logged: loggedCheckpoints(checkpointLogPath(this.dir)),
          ...options,
        });
        return found.warnings.length === 0 ? report : { ...report, warnings: found.warnings };
      } catch (error) {
        throw storageError(error, this.dir, "read");
      }
    });
  }

  /**
   * The export's first line: what a third party needs to check the lines after it
   * (docs/ledger.md gives the formulas).
   */
  exportHeader(): string {
    return canonicalJson({
      export: "op ledger",
      format: Number(FORMAT),
      origin: this.origin,
      genesis: genesisHash(this.origin).toString("hex"),
      genesisRule: 'prev of record 1 = SHA-256("op ledger genesis\\n" || origin)',
      hashRule:
        "hash = SHA-256(0x00 || prev || RFC 8785 canonical JSON of the record without prev and hash)",
      linkRule:
        "prev of the record after a checkpoint at size n = SHA-256(0x01 || hash(n) || SHA-256(checkpoint text))",
      linkedFrom: Number.isFinite(this.linkedFrom) ? this.linkedFrom : null,
    });
  }

  /** One canonical JSON line per record: its body fields plus "prev" and "hash" (hex). */
  async *exportLines(): AsyncIterable<string> {
    for await (const [key, value] of this.entries(false)) {
      yield canonicalJson(parseRecord(key, value));
    }
  }

  /**
   * The whole export: the header, then each record, each checkpoint right after the record
   * it covers as `{"checkpoint": text, "size": n}` (with `endorsement` after a key rotation).
   */
  async *exportAll(): AsyncIterable<string> {
    yield this.exportHeader();
    const checkpoints = new Map<number, string>();
    try {
      for await (const [key, value] of this.db.iterator(CHECKPOINT_RANGE)) {
        checkpoints.set(keyNumber(key) ?? -1, value.toString("utf8"));
      }
    } catch (error) {
      throw storageError(error, this.dir, "read");
    }
    const checkpointLine = (size: number) => {
      const text = checkpoints.get(size);
      // After a key rotation's record: the new key's countersignature of the checkpoint.
      const endorsement = this.rotations.find((rotation) => rotation.seq === size)?.endorsement;
      return text === undefined
        ? undefined
        : canonicalJson({ checkpoint: text, size, ...(endorsement ? { endorsement } : {}) });
    };
    const first = checkpointLine(0);
    if (first !== undefined) yield first;
    for await (const [key, value] of this.entries(false)) {
      const record = parseRecord(key, value);
      yield canonicalJson(record);
      const line = checkpointLine(record.seq);
      if (line !== undefined) yield line;
    }
  }

  async close(): Promise<void> {
    await this.queue;
    await this.db.close();
    if (this.view !== undefined) removeView(this.view);
  }
}
