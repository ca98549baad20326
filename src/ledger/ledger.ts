/**
 * op's audit ledger: an append-only, SHA-256-chained log of every step op takes (an `intent`
 * before a host change, an `ok` / `failed` outcome after it) in an embedded LevelDB, with signed
 * checkpoints. The byte format is described in store.ts.
 *
 * Durability: each record and the head pointer go in one atomic batch, not synced (an fsync per
 * record would dominate a run); a process crash still leaves every written record, as LevelDB
 * has handed it to the kernel. `checkpoint()` writes with sync, which syncs LevelDB's log and so
 * every record before it: op calls it at the end of each run.
 */
import { mkdirSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { Level } from "level";
import { OpError } from "../errors.js";
import { traced } from "../trace.js";
import { signCheckpoint } from "./checkpoint.js";
import { canonicalJson, genesisHash } from "./hash.js";
import {
  completeSigningKey,
  loadOrCreateSigningKey,
  loadPublicKey,
  readSigningSecret,
  type SigningKey,
} from "./keys.js";
import {
  CHECKPOINT_RANGE,
  checkpointKey,
  decodeRecord,
  encodeHead,
  encodeRecord,
  FORMAT,
  FORMAT_KEY,
  HASH_AT,
  HEAD_KEY,
  keyNumber,
  LEAF_AT,
  type LedgerRecord,
  ORIGIN_KEY,
  RECORD_RANGE,
  RECORD_VERSION,
  type RecordInput,
  recordBody,
  recordKey,
} from "./store.js";
import { type LedgerDb, type VerifyReport, verifyChain } from "./verify.js";

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
   * false: open an existing ledger only, and never create a key (for log/show/verify/export).
   * Default true.
   */
  create?: boolean;
}

export interface RecordFilter {
  plugin?: string;
  since?: Date;
  limit?: number;
  /** Newest first (with `limit`: the latest records). */
  reverse?: boolean;
}

export type { VerifyReport } from "./verify.js";

const READ_BATCH = 500;

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether `dir` holds a LevelDB database; other errors than "not there" are thrown. */
function existsLedger(dir: string): boolean {
  try {
    statSync(join(dir, "CURRENT"));
    return true;
  } catch (error) {
    if (errnoCode(error) === "ENOENT" || errnoCode(error) === "ENOTDIR") return false;
    throw error;
  }
}

/** What a failure to create or open the database means to the user. */
function openError(error: unknown, dir: string): unknown {
  const cause = (error as { cause?: unknown }).cause ?? error;
  const code = errnoCode(cause) ?? errnoCode(error);
  const detail = (cause as Error).message ?? String(cause);
  if (code === "LEVEL_LOCKED") {
    return new OpError("ledger-busy", `the ledger ${dir} is in use by another process`, {
      hint: "another op run holds it: wait for that run to finish, then retry",
      cause: error,
    });
  }
  if (code === "LEVEL_CORRUPTION") {
    return new OpError("ledger-corrupt", `the ledger database ${dir} is damaged: ${detail}`, {
      hint: "restore it from a backup; `op ledger export` output can be checked elsewhere",
      cause: error,
    });
  }
  if (
    code === "EACCES" ||
    code === "EPERM" ||
    code === "EROFS" ||
    /Permission denied|Read-only/.test(detail)
  ) {
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

export class Ledger {
  readonly origin: string;
  readonly dir: string;
  readonly keyFile: string;
  private readonly db: LedgerDb;
  private readonly host: string;
  private readonly clock: () => Date;
  private signingKey: SigningKey | undefined;
  /** The checked secret of an existing key, until the first checkpoint completes the pair. */
  private signingSecret: Uint8Array | undefined;
  private headSeq: number;
  private headHash: Buffer;
  /** Appends, checkpoints and verify run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Appends waiting for the next batch (see `append`). */
  private readonly pending: {
    input: RecordInput;
    resolve: (written: { seq: number; hash: string }) => void;
    reject: (error: unknown) => void;
  }[] = [];

  private constructor(
    db: LedgerDb,
    dir: string,
    origin: string,
    options: LedgerOptions,
    head: { seq: number; hash: Buffer },
    signingSecret: Uint8Array | undefined,
  ) {
    this.db = db;
    this.dir = dir;
    this.origin = origin;
    this.keyFile = options.keyFile;
    this.host = options.host ?? hostname();
    this.clock = options.clock ?? (() => new Date());
    this.headSeq = head.seq;
    this.headHash = head.hash;
    this.signingSecret = signingSecret;
  }

  static async open(dir: string, options: LedgerOptions): Promise<Ledger> {
    const location = resolve(dir);
    const create = options.create ?? true;
    // Synchronous on purpose: apply opens the ledger while its queries keep the thread busy,
    // and each awaited call would wait for a free turn of it before LevelDB could start.
    // These are two metadata calls on a local directory (microseconds).
    try {
      if (create) mkdirSync(location, { recursive: true, mode: 0o700 });
      else if (!existsLedger(location)) {
        throw new OpError("invalid-state", `there is no ledger at ${location}`, {
          hint: "op creates it on the first `op apply`; check the --ledger path",
        });
      }
    } catch (error) {
      throw error instanceof OpError ? error : openError(error, location);
    }
    // An existing key is read and checked while LevelDB opens, so a bad key stops the run
    // before it changes anything; one is created only once the ledger opened. Its public half
    // (an OpenSSL key set-up, ~3 ms of the thread) waits for the first checkpoint, which runs
    // while the host is verified rather than before the first change.
    const existingSecret = create ? readSigningSecret(options.keyFile) : undefined;
    existingSecret?.catch(() => {});
    const db: LedgerDb = new Level<string, Buffer>(location, {
      keyEncoding: "utf8",
      valueEncoding: "buffer",
      createIfMissing: create,
    });
    try {
      await traced("leveldb open", () => db.open());
    } catch (error) {
      throw openError(error, location);
    }
    try {
      const origin = await Ledger.initialise(db, location, options);
      const head = await Ledger.lastRecord(db, origin);
      const secret = create
        ? await traced(
            "ledger key",
            async () =>
              (await existingSecret) ?? (await loadOrCreateSigningKey(options.keyFile)).secretKey,
          )
        : undefined;
      return new Ledger(db, location, origin, options, head, secret);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** Reads (or, for a new ledger, writes) the format and origin. */
  private static async initialise(
    db: LedgerDb,
    dir: string,
    options: LedgerOptions,
  ): Promise<string> {
    const [format, stored] = await db.getMany([FORMAT_KEY, ORIGIN_KEY]);
    if (format !== undefined && format.toString("utf8") !== FORMAT) {
      throw new OpError(
        "invalid-state",
        `the ledger ${dir} has format ${format.toString("utf8")}, this op reads format ${FORMAT}`,
        {
          hint: "use the op version that wrote it",
        },
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
      return origin;
    }
    const [anyRecord] = await db.keys({ ...RECORD_RANGE, limit: 1 }).all();
    if (anyRecord !== undefined) {
      throw new OpError("ledger-corrupt", `the ledger ${dir} has records but no origin`, {
        hint: "its metadata was removed; restore the ledger from a backup",
      });
    }
    const origin = wanted ?? `op@${hostname()}`;
    await db.batch(
      [
        { type: "put", key: FORMAT_KEY, value: Buffer.from(FORMAT) },
        { type: "put", key: ORIGIN_KEY, value: Buffer.from(origin, "utf8") },
      ],
      { sync: true },
    );
    return origin;
  }

  /**
   * Appends continue after the last record actually stored (not the head pointer), so an
   * inconsistent ledger is extended rather than overwritten; verify reports the inconsistency.
   */
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

  /**
   * Appends one record. Appends that arrive while a batch is being written are written
   * together in the next one (group commit): each record is still on disk, chained and with
   * the head, before its promise resolves, but 200 concurrent steps cost a few LevelDB
   * batches rather than 200.
   */
  append(input: RecordInput): Promise<{ seq: number; hash: string }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (this.pending.length === 1) void this.enqueue(() => this.flushPending());
    });
  }

  private async flushPending(): Promise<void> {
    const group = this.pending.splice(0);
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
   * Writes the records that can be encoded, chained, with the head, in one atomic batch. A
   * record with no canonical JSON form is left out (its result carries the error) and takes
   * no seq, so the chain stays whole.
   */
  private async write(inputs: readonly RecordInput[]): Promise<Written[]> {
    const operations: { type: "put"; key: string; value: Buffer }[] = [];
    const results: Written[] = [];
    let seq = this.headSeq;
    let prev = this.headHash;
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
      results.push({ seq, hash: hash.toString("hex") });
      prev = hash;
    }
    if (operations.length === 0) return results;
    operations.push({ type: "put", key: HEAD_KEY, value: encodeHead(seq, prev) });
    await this.db.batch(operations);
    this.headSeq = seq;
    this.headHash = prev;
    return results;
  }

  private body(seq: number, input: RecordInput): string {
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

  /** Signs (origin, size, head hash), stores it, and syncs everything written before it. */
  checkpoint(): Promise<string> {
    return this.enqueue(async () => {
      this.signingKey ??=
        this.signingSecret === undefined
          ? await loadOrCreateSigningKey(this.keyFile)
          : await completeSigningKey(this.keyFile, this.signingSecret);
      const text = signCheckpoint(
        {
          origin: this.origin,
          size: this.headSeq,
          root: this.headHash.toString("hex"),
          time: this.clock().toISOString(),
        },
        this.signingKey,
      );
      await this.db.put(checkpointKey(this.headSeq), Buffer.from(text, "utf8"), { sync: true });
      return text;
    });
  }

  async latestCheckpoint(): Promise<string | undefined> {
    const [last] = await this.db.values({ ...CHECKPOINT_RANGE, reverse: true, limit: 1 }).all();
    return last?.toString("utf8");
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
        const entries = await iterator.nextv(READ_BATCH);
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
    const value = await this.db.get(recordKey(seq));
    return value === undefined ? undefined : parseRecord(recordKey(seq), value);
  }

  /**
   * Checks the whole chain, every stored checkpoint and `trusted` (checkpoint text kept outside
   * the database). `hashWorker` forces where hashing runs (tests); by default large ledgers
   * hash on a worker thread.
   */
  verify(options: { trusted?: string; hashWorker?: boolean } = {}): Promise<VerifyReport> {
    return this.enqueue(async () =>
      verifyChain({
        db: this.db,
        origin: this.origin,
        publicKey: this.signingKey?.publicKey ?? (await loadPublicKey(this.keyFile)),
        keyFile: this.keyFile,
        ...options,
      }),
    );
  }

  /** One canonical JSON line per record: its body fields plus "prev" and "hash" (hex). */
  async *exportLines(): AsyncIterable<string> {
    for await (const [key, value] of this.entries(false)) {
      yield canonicalJson(parseRecord(key, value));
    }
  }

  async close(): Promise<void> {
    await this.queue;
    await this.db.close();
  }
}
