/**
 * Outcomes op cannot know (`unknown`), intents a later run settles (`settled`), the index of
 * intents without a final outcome (`pending`), and `checkpointIfUnsigned`, on real LevelDB.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { Ledger, type RecordInput } from "./ledger.js";
import { CHECKPOINT_RANGE, FORMAT_KEY, LINKED_KEY, PENDING_RANGE, pendingKey } from "./store.js";
import { makeTempDir, removeTempDirs, withRawDb } from "./testing.js";

afterEach(removeTempDirs);

async function newLedger() {
  const root = await makeTempDir("pending");
  const dir = join(root, "ledger");
  const keyFile = join(root, "keys", "ledger.key");
  const open = () => Ledger.open(dir, { keyFile, origin: "op@test", host: "h1" });
  return { dir, keyFile, open, ledger: await open() };
}

const step = (
  target: string,
  status: RecordInput["status"],
  extra: Partial<RecordInput> = {},
): RecordInput => ({ run: "run-1", plugin: "lxc", action: "create", target, status, ...extra });

describe("pending intents", () => {
  it("are the intents with no ok, failed or settled outcome, also after reopening", async () => {
    const { dir, open, ledger } = await newLedger();
    await ledger.append(step("a", "intent")); // 1
    await ledger.append(step("a", "ok")); // 2
    await ledger.append(step("b", "intent")); // 3
    await ledger.append(step("c", "intent")); // 4
    await ledger.append(step("c", "unknown", { error: "Incus went away after the request" })); // 5
    await ledger.append(step("d", "intent", { action: "delete" })); // 6
    await ledger.append(step("d", "failed", { action: "delete", error: "busy" })); // 7
    const expected = [
      { seq: 3, run: "run-1", plugin: "lxc", action: "create", target: "b", status: "intent" },
      {
        seq: 4,
        run: "run-1",
        plugin: "lxc",
        action: "create",
        target: "c",
        status: "unknown",
        error: "Incus went away after the request",
      },
    ];
    expect(await ledger.pending()).toEqual(expected);
    await ledger.close();

    // The index is in the database, one key per pending intent.
    expect(await withRawDb(dir, (db) => db.keys(PENDING_RANGE).all())).toEqual([
      pendingKey(3),
      pendingKey(4),
    ]);

    // A later run (another process) sees them and settles them.
    const later = await open();
    expect(await later.pending()).toEqual(expected);
    await later.append({
      ...step("b", "settled", { run: "run-2", settles: 3 }),
      changes: { found: "created" },
    });
    expect((await later.pending()).map((p) => p.seq)).toEqual([4]);
    const settled = await later.append(
      step("c", "settled", { run: "run-2", settles: 4, error: "not on the host: retried" }),
    );
    expect(await later.pending()).toEqual([]);
    expect(await later.show(settled.seq)).toMatchObject({ status: "settled", settles: 4 });
    expect(await later.verify()).toMatchObject({ ok: true, size: 9 });
    await later.close();
  });

  it("an intent and its outcome in the same batch leave nothing pending", async () => {
    const { ledger } = await newLedger();
    await Promise.all([
      ledger.append(step("a", "intent")),
      ledger.append(step("a", "ok")),
      ledger.append(step("b", "intent")),
    ]);
    expect((await ledger.pending()).map((p) => p.target)).toEqual(["b"]);
    await ledger.close();
  });

  it("a settled record must name an earlier intent; nothing else is written", async () => {
    const { ledger } = await newLedger();
    await ledger.append(step("a", "intent"));
    for (const settles of [undefined, 0, 2, 1.5]) {
      const error = await ledger
        .append(step("a", "settled", settles === undefined ? {} : { settles }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpError);
      expect((error as OpError).message).toMatch(/must name an earlier intent/);
    }
    expect(await ledger.size()).toBe(1);
    expect((await ledger.pending()).map((p) => p.seq)).toEqual([1]);
    await ledger.close();
  });

  it("are indexed when a format-1 ledger (no index) is first opened to write", async () => {
    const { dir, open, ledger } = await newLedger();
    await ledger.append(step("a", "intent"));
    await ledger.append(step("b", "intent"));
    await ledger.append(step("b", "ok"));
    await ledger.close();
    // What an older op left: format 1, no index, no linked-from mark.
    await withRawDb(dir, async (db) => {
      await db.put(FORMAT_KEY, Buffer.from("1"));
      await db.del(LINKED_KEY);
      for (const key of await db.keys(PENDING_RANGE).all()) await db.del(key);
    });
    const upgraded = await open();
    expect((await upgraded.pending()).map((p) => p.target)).toEqual(["a"]);
    await upgraded.checkpoint();
    await upgraded.append(step("c", "intent"));
    expect(await upgraded.verify()).toMatchObject({ ok: true, size: 4 });
    await upgraded.close();
    expect(await withRawDb(dir, async (db) => (await db.get(FORMAT_KEY))?.toString())).toBe("2");
  });
});

describe("checkpointIfUnsigned", () => {
  it("signs only when records were written after the last checkpoint", async () => {
    const { dir, open, ledger } = await newLedger();
    expect(await ledger.checkpointIfUnsigned()).toBe(false);
    await ledger.append(step("a", "intent"));
    expect(await ledger.checkpointIfUnsigned()).toBe(true);
    expect(await ledger.checkpointIfUnsigned()).toBe(false);
    await ledger.append(step("a", "ok"));
    await ledger.close();

    // A run that changed nothing finds the unsigned record of a run that died before signing.
    const later = await open();
    expect(await later.checkpointIfUnsigned()).toBe(true);
    expect(await later.checkpointIfUnsigned()).toBe(false);
    await later.close();
    const sizes = await withRawDb(dir, (db) => db.keys(CHECKPOINT_RANGE).all());
    expect(sizes).toHaveLength(2);
  });

  it("a second checkpoint at the same size returns the first unchanged", async () => {
    const { ledger } = await newLedger();
    await ledger.append(step("a", "intent"));
    const first = await ledger.checkpoint();
    expect(await ledger.checkpoint()).toBe(first);
    await ledger.close();
  });
});
