import { chmod, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint } from "./checkpoint.js";
import { canonicalJson, genesisHash, leafHash } from "./hash.js";
import { Ledger, type LedgerOptions, type RecordInput } from "./ledger.js";
import { makeTempDir, removeTempDirs, runLedgerChild } from "./testing.js";

afterEach(removeTempDirs);

/** A clock that starts at `start` and moves one second per call. */
function steppingClock(start = Date.parse("2025-03-01T00:00:00Z")): () => Date {
  let now = start;
  return () => {
    const date = new Date(now);
    now += 1000;
    return date;
  };
}

async function newLedger(options: Partial<LedgerOptions> = {}) {
  const root = await makeTempDir("unit");
  const dir = join(root, "ledger");
  const keyFile = join(root, "keys", "ledger.key");
  const ledger = await Ledger.open(dir, { keyFile, origin: "op@test", host: "h1", ...options });
  return { root, dir, keyFile, ledger };
}

function step(n: number, overrides: Partial<RecordInput> = {}): RecordInput {
  return {
    run: "run-1",
    plugin: n % 2 === 0 ? "nftables" : "network",
    action: "modify",
    target: `target-${n}`,
    changes: [{ path: "mtu", before: 1500, after: 9000 + n }],
    status: "intent",
    ...overrides,
  };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function expectOpError(promise: Promise<unknown>, code: string, message: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpError);
  expect((error as OpError).code).toBe(code);
  expect((error as OpError).message).toMatch(message);
  // Every error the ledger raises tells the user what to do next.
  expect((error as OpError).hint).toMatch(/\w+ \w+/);
}

describe("appending and reading back", () => {
  it("numbers records from 1 and chains each to the one before", async () => {
    const { ledger } = await newLedger({ clock: steppingClock() });
    const a = await ledger.append(step(1));
    const b = await ledger.append(step(1, { status: "ok" }));
    const c = await ledger.append(
      step(2, { action: "delete", status: "failed", error: "nft: busy" }),
    );
    expect([a.seq, b.seq, c.seq]).toEqual([1, 2, 3]);
    expect(await ledger.size()).toBe(3);

    const first = await ledger.show(1);
    expect(first).toEqual({
      ...step(1),
      seq: 1,
      time: "2025-03-01T00:00:00.000Z",
      host: "h1",
      hash: a.hash,
      prev: genesisHash("op@test").toString("hex"),
    });
    expect((await ledger.show(2))?.prev).toBe(a.hash);
    const third = await ledger.show(3);
    expect(third).toMatchObject({
      status: "failed",
      error: "nft: busy",
      prev: b.hash,
      hash: c.hash,
    });
    expect(await ledger.show(4)).toBeUndefined();
    await expectOpError(ledger.show(0), "usage", /not a positive integer/);
    await ledger.close();
  });

  it("keeps a valid chain when 200 appends are started at once", async () => {
    const { ledger } = await newLedger();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => ledger.append(step(i))),
    );
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const records = await collect(ledger.records());
    expect(records.map((r) => r.target)).toEqual(
      Array.from({ length: 200 }, (_, i) => `target-${i}`),
    );
    let prev = genesisHash("op@test").toString("hex");
    for (const record of records) {
      expect((await ledger.show(record.seq))?.prev).toBe(prev);
      prev = record.hash;
    }
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 200 });
    await ledger.close();
  });

  it("writes appends that arrive together in a few batches, each resolved once on disk", async () => {
    const { ledger } = await newLedger();
    const db = (ledger as unknown as { db: { batch: (...args: unknown[]) => Promise<void> } }).db;
    const batch = db.batch.bind(db);
    let batches = 0;
    db.batch = (...args: unknown[]) => {
      batches++;
      return batch(...args);
    };
    const first = ledger.append(step(0));
    const rest = Array.from({ length: 199 }, (_, i) => ledger.append(step(i + 1)));
    const results = await Promise.all([first, ...rest]);
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // Appends made before the queue gets to them share one batch.
    expect(batches).toBe(1);
    await ledger.append(step(200));
    expect(batches).toBe(2);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 201 });
    await ledger.close();
  });

  it("refuses only the record that cannot be encoded when it shares a batch", async () => {
    const { ledger } = await newLedger();
    const results = await Promise.allSettled([
      ledger.append(step(0)),
      ledger.append(step(1)),
      ledger.append({ ...step(2), changes: { bad: Number.NaN } }),
      ledger.append(step(3)),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect((await collect(ledger.records())).map((r) => [r.seq, r.target])).toEqual([
      [1, "target-0"],
      [2, "target-1"],
      [3, "target-3"],
    ]);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 3 });
    await ledger.close();
  });

  it("continues the chain after reopening", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    const first = await ledger.append(step(1));
    await ledger.close();
    const again = await Ledger.open(dir, { keyFile });
    expect(again.origin).toBe("op@test");
    const second = await again.append(step(2));
    expect(second.seq).toBe(2);
    expect((await again.show(2))?.prev).toBe(first.hash);
    expect(await again.verify()).toMatchObject({ ok: true, size: 2 });
    await again.close();
  });

  it("refuses a record with no canonical JSON form and keeps the chain intact", async () => {
    const { ledger } = await newLedger();
    await ledger.append(step(1));
    await expectOpError(
      ledger.append(step(2, { changes: { mtu: Number.NaN } })),
      "invalid-state",
      /no canonical JSON form/,
    );
    expect((await ledger.append(step(3))).seq).toBe(2);
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 2 });
    await ledger.close();
  });
});

describe("records, show and export", () => {
  it("filters by plugin, time and count, oldest or newest first", async () => {
    const { ledger } = await newLedger({ clock: steppingClock() });
    for (let i = 1; i <= 10; i++) await ledger.append(step(i));
    const targets = async (filter: Parameters<Ledger["records"]>[0]) =>
      (await collect(ledger.records(filter))).map((r) => r.seq);
    expect(await targets({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await targets({ plugin: "nftables" })).toEqual([2, 4, 6, 8, 10]);
    // Record n was written at 00:00:(n-1).
    expect(await targets({ since: new Date("2025-03-01T00:00:06Z") })).toEqual([7, 8, 9, 10]);
    expect(await targets({ limit: 3 })).toEqual([1, 2, 3]);
    expect(await targets({ limit: 3, reverse: true })).toEqual([10, 9, 8]);
    expect(
      await targets({ plugin: "network", since: new Date("2025-03-01T00:00:02Z"), limit: 2 }),
    ).toEqual([3, 5]);
    expect(await targets({ limit: 0 })).toEqual([]);
    await ledger.close();
  });

  it("exports one JSON line per record that can be checked without op", async () => {
    const { ledger } = await newLedger();
    for (let i = 1; i <= 5; i++)
      await ledger.append(step(i, { changes: { name: `é-${i}`, n: i / 3 } }));
    const lines = await collect(ledger.exportLines());
    expect(lines).toHaveLength(5);
    let prev = genesisHash("op@test").toString("hex");
    for (const [i, line] of lines.entries()) {
      expect(line).not.toContain("\n");
      const { hash, prev: linePrev, ...body } = JSON.parse(line) as Record<string, unknown>;
      expect(body.seq).toBe(i + 1);
      expect(linePrev).toBe(prev);
      const recomputed = leafHash(
        Buffer.concat([Buffer.from(prev, "hex"), Buffer.from(canonicalJson(body), "utf8")]),
      );
      expect(recomputed.toString("hex")).toBe(hash);
      prev = hash as string;
    }
    await ledger.close();
  });

  it("defaults the origin to op@<hostname> and records the host", async () => {
    const root = await makeTempDir("origin");
    const ledger = await Ledger.open(join(root, "db"), { keyFile: join(root, "key") });
    expect(ledger.origin).toBe(`op@${hostname()}`);
    await ledger.append(step(1));
    expect((await ledger.show(1))?.host).toBe(hostname());
    await ledger.close();
  });

  it("refuses to reopen a ledger under another origin", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    await ledger.close();
    await expectOpError(
      Ledger.open(dir, { keyFile, origin: "op@other" }),
      "invalid-state",
      /belongs to origin op@test, not op@other/,
    );
    await expectOpError(
      Ledger.open(dir, { keyFile, origin: "op@a\nsize 9" }),
      "usage",
      /must be a non-empty line/,
    );
  });
});

describe("checkpoints and the signing key", () => {
  it("signs the size and head hash, stores the checkpoint and returns it", async () => {
    const { ledger } = await newLedger();
    expect(await ledger.latestCheckpoint()).toBeUndefined();
    await ledger.append(step(1));
    const last = await ledger.append(step(2));
    const text = await ledger.checkpoint();
    expect(parseCheckpoint(text)).toMatchObject({ origin: "op@test", size: 2, root: last.hash });
    expect(await ledger.latestCheckpoint()).toBe(text);
    await ledger.append(step(3));
    const later = await ledger.checkpoint();
    expect(parseCheckpoint(later).size).toBe(3);
    expect(await ledger.latestCheckpoint()).toBe(later);
    expect(await ledger.verify()).toMatchObject({
      ok: true,
      checkpoints: 2,
      checkpoint: { size: 3, ok: true },
    });
    await ledger.close();
  });

  it("creates the key 0600 in a 0700 directory, the public half 0644, and reuses it", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    const mode = async (path: string) => (await stat(path)).mode & 0o777;
    expect(await mode(keyFile)).toBe(0o600);
    expect(await mode(join(keyFile, ".."))).toBe(0o700);
    expect(await mode(`${keyFile}.pub`)).toBe(0o644);
    const secret = await readFile(keyFile, "utf8");
    await ledger.append(step(1));
    const first = parseCheckpoint(await ledger.checkpoint());
    await ledger.close();

    const again = await Ledger.open(dir, { keyFile });
    await again.append(step(2));
    const second = parseCheckpoint(await again.checkpoint());
    expect(await readFile(keyFile, "utf8")).toBe(secret);
    expect(second.key).toBe(first.key);
    expect(first.key).toBe((await readFile(`${keyFile}.pub`, "utf8")).trim());
    expect(await again.verify()).toMatchObject({ ok: true, checkpoints: 2 });
    await again.close();
  });

  it("refuses a key file that other users can read", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    await ledger.close();
    await chmod(keyFile, 0o644);
    await expectOpError(
      Ledger.open(dir, { keyFile }),
      "permission-denied",
      /readable by other users \(mode 0644\)/,
    );
  });

  it("refuses a key file that is not a key", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    await ledger.close();
    await writeFile(keyFile, "not a key\n", { mode: 0o600 });
    await expectOpError(Ledger.open(dir, { keyFile }), "invalid-state", /is not an Ed25519 key/);
  });

  it("verifies with the public half alone and never creates a key when opened read-only", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    await ledger.append(step(1));
    await ledger.checkpoint();
    await ledger.close();

    const elsewhere = join(dir, "..", "elsewhere", "ledger.key");
    const blind = await Ledger.open(dir, { keyFile: elsewhere, create: false });
    expect(await blind.verify()).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/cannot check its signature: no key at .*elsewhere/),
    });
    await blind.close();
    await expect(stat(elsewhere)).rejects.toThrow();

    await rm(keyFile);
    const reader = await Ledger.open(dir, { keyFile, create: false });
    expect(await reader.verify()).toMatchObject({ ok: true, checkpoints: 1 });
    await reader.close();
    await expect(stat(keyFile)).rejects.toThrow();
  });
});

describe("opening", () => {
  it("reads the head through a view while a writer holds the database open", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    try {
      await ledger.append(step(1));
      const last = await ledger.append(step(2));
      await ledger.checkpoint();
      // LevelDB refuses a second open of a database; the view does not open the same one.
      const reader = await Ledger.open(dir, { keyFile, create: false, view: true });
      try {
        expect(await reader.head()).toEqual({ seq: 2, hash: last.hash });
        expect(parseCheckpoint((await reader.latestCheckpoint()) ?? "").size).toBe(2);
        await expectOpError(reader.append(step(3)), "usage", /opened to read only/);
      } finally {
        await reader.close();
      }
      expect(await ledger.head()).toEqual({ seq: 2, hash: last.hash });
    } finally {
      await ledger.close();
    }
  });

  it("reports a ledger another process holds as busy, naming the directory", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    const child = await runLedgerChild(`
      try {
        await Ledger.open(${JSON.stringify(dir)}, { keyFile: ${JSON.stringify(keyFile)} });
        print({ opened: true });
      } catch (error) {
        print({ code: error.code, message: error.message, hint: error.hint });
      }`);
    expect(child.stderr).toBe("");
    const result = JSON.parse(child.stdout) as { code: string; message: string; hint: string };
    expect(result.code).toBe("ledger-busy");
    expect(result.message).toContain(dir);
    expect(result.hint).toMatch(/another op run/);
    await ledger.close();
  });

  it("reports a second open in the same process as busy too", async () => {
    const { dir, keyFile, ledger } = await newLedger();
    await expectOpError(Ledger.open(dir, { keyFile }), "ledger-busy", /in use by another process/);
    await ledger.close();
  });

  it("does not create a missing ledger when asked to open an existing one", async () => {
    const root = await makeTempDir("missing");
    await expectOpError(
      Ledger.open(join(root, "nope"), { keyFile: join(root, "key"), create: false }),
      "invalid-state",
      /there is no ledger at .*nope/,
    );
    await expect(stat(join(root, "nope"))).rejects.toThrow();
    await expect(stat(join(root, "key"))).rejects.toThrow();
  });

  it("reports a ledger path through a regular file as invalid", async () => {
    const root = await makeTempDir("notdir");
    await writeFile(join(root, "file"), "x");
    await expectOpError(
      Ledger.open(join(root, "file", "ledger"), { keyFile: join(root, "key") }),
      "invalid-state",
      /cannot open the ledger .*file\/ledger/,
    );
  });

  it("keeps an intent written just before the process is killed", async () => {
    const root = await makeTempDir("crash");
    const dir = join(root, "ledger");
    const keyFile = join(root, "ledger.key");
    const child = await runLedgerChild(`
      const ledger = await Ledger.open(${JSON.stringify(dir)}, { keyFile: ${JSON.stringify(keyFile)}, origin: "op@crash" });
      await ledger.append({ run: "r", plugin: "lxc", action: "create", target: "ct100", status: "intent" });
      process.kill(process.pid, "SIGKILL");`);
    expect(child.signal).toBe("SIGKILL");
    const ledger = await Ledger.open(dir, { keyFile });
    expect(await ledger.show(1)).toMatchObject({ target: "ct100", status: "intent" });
    expect(await ledger.verify()).toMatchObject({ ok: true, size: 1 });
    await ledger.close();
  });
});
