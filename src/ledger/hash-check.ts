/**
 * Verify's hash check of stored records: hash bytes [LEAF_AT, end) of each value and compare
 * with its bytes [HASH_AT, LEAF_AT). On a large ledger this runs on a worker thread: the main
 * thread is busy turning LevelDB's entries into JS values (the whole cost of a bare iteration),
 * so hashing there would add to it, while on another core it overlaps.
 */
import { HASH_BYTES, sha256Matches } from "./hash.js";
import { HASH_AT, LEAF_AT } from "./store.js";

export interface HashCheck {
  /** Queues records `first`, `first + 1`, ... May wait, to bound what is in flight. */
  add(values: readonly Buffer[], first: number): Promise<void>;
  /** A mismatch is already known: the walk can stop. */
  readonly failed: boolean;
  /** Waits for everything queued; the first record whose hash does not match, if any. */
  finish(): Promise<number | undefined>;
  close(): Promise<void>;
}

export class InlineHashCheck implements HashCheck {
  private firstBad: number | undefined;

  get failed(): boolean {
    return this.firstBad !== undefined;
  }

  async add(values: readonly Buffer[], first: number): Promise<void> {
    if (this.firstBad !== undefined) return;
    for (const [i, value] of values.entries()) {
      if (!sha256Matches(value.subarray(LEAF_AT), value, HASH_AT)) {
        this.firstBad = first + i;
        return;
      }
    }
  }

  async finish(): Promise<number | undefined> {
    return this.firstBad;
  }

  async close(): Promise<void> {}
}

/**
 * The worker's loop: the same check as sha256Matches over one transferred buffer of values;
 * answers the index of the first mismatch, or -1. (Plain JS source: the worker must run the
 * same way from the TypeScript sources under test and from the compiled build.)
 */
const workerSource = `
const { parentPort } = require("node:worker_threads");
const { hash } = require("node:crypto");
parentPort.on("message", ({ data, offsets }) => {
  const bytes = new Uint8Array(data);
  for (let i = 0; i + 1 < offsets.length; i++) {
    const start = offsets[i];
    const digest = hash("sha256", bytes.subarray(start + ${LEAF_AT}, offsets[i + 1]), "latin1");
    for (let j = 0; j < ${HASH_BYTES}; j++) {
      if (digest.charCodeAt(j) !== bytes[start + ${HASH_AT} + j]) return parentPort.postMessage(i);
    }
  }
  parentPort.postMessage(-1);
});
`;

/** Batches in flight at most: bounds memory when the worker is slower than the walk. */
const IN_FLIGHT = 4;

export class WorkerHashCheck implements HashCheck {
  // Fetched here, not imported: only a verify of a large ledger starts a worker, and loading
  // node:worker_threads would cost every `op apply` its load.
  private readonly worker = new (process.getBuiltinModule("node:worker_threads").Worker)(
    workerSource,
    { eval: true },
  );
  /** Answers arrive in the order batches were sent. */
  private readonly waiting: { first: number; resolve: (bad: number | undefined) => void }[] = [];
  private readonly results: Promise<number | undefined>[] = [];
  private firstBad: number | undefined;
  private error: Error | undefined;

  constructor() {
    this.worker.on("message", (index: number) => {
      const batch = this.waiting.shift();
      const bad = index < 0 || batch === undefined ? undefined : batch.first + index;
      if (bad !== undefined && (this.firstBad === undefined || bad < this.firstBad)) {
        this.firstBad = bad;
      }
      batch?.resolve(bad);
    });
    const fail = (error: Error) => {
      this.error ??= error;
      for (const batch of this.waiting.splice(0)) batch.resolve(undefined);
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => {
      if (this.waiting.length > 0) fail(new Error(`the hash worker exited (${code}) mid-verify`));
    });
  }

  get failed(): boolean {
    return this.firstBad !== undefined || this.error !== undefined;
  }

  async add(values: readonly Buffer[], first: number): Promise<void> {
    if (values.length === 0) return;
    // One transferable buffer per batch: no copy across threads, one message.
    const offsets = new Int32Array(values.length + 1);
    let size = 0;
    for (const [i, value] of values.entries()) {
      offsets[i] = size;
      size += value.length;
    }
    offsets[values.length] = size;
    const data = new ArrayBuffer(size);
    const bytes = new Uint8Array(data);
    for (const [i, value] of values.entries()) bytes.set(value, offsets[i]);
    this.results.push(
      new Promise((resolve) => {
        this.waiting.push({ first, resolve });
      }),
    );
    this.worker.postMessage({ data, offsets }, [data, offsets.buffer]);
    while (this.waiting.length > IN_FLIGHT) {
      await this.results[this.results.length - this.waiting.length];
    }
  }

  async finish(): Promise<number | undefined> {
    await Promise.all(this.results);
    if (this.error !== undefined) throw this.error;
    return this.firstBad;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
