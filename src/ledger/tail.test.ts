/**
 * The tail check's tolerances: a crash between a checkpoint's two writes (ledger, then the
 * checkpoint log) is completed, not refused; a ledger from before the checkpoint log starts
 * one. Everything else it refuses is in test/ledger-tamper.system.test.ts, against real applies.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { signCheckpoint } from "./checkpoint.js";
import { checkpointLogPath } from "./checkpoint-log.js";
import { getPublicKey } from "./ed25519.js";
import { Ledger, type RecordInput } from "./ledger.js";
import { checkpointKey, decodeHead, FORMAT_KEY, HEAD_KEY, LINKED_KEY } from "./store.js";
import { makeTempDir, removeTempDirs, withRawDb } from "./testing.js";

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
    const root = await makeTempDir("tail");
    const dir = join(root, "ledger");
    const keyFile = join(root, "ledger.key");
    const ledger = await Ledger.open(dir, { keyFile, origin: "op@old" });
    for (let n = 1; n <= 3; n++) await ledger.append(step(n));
    await ledger.close();
    // What an older op left: format 1, an unlinked checkpoint at 3, no checkpoint log.
    const secretKey = Buffer.from((await readFile(keyFile, "utf8")).trim(), "base64");
    const old = await withRawDb(dir, async (db) => {
      const head = decodeHead((await db.get(HEAD_KEY)) ?? Buffer.alloc(0));
      const text = signCheckpoint(
        {
          origin: "op@old",
          size: 3,
          root: head?.hash.toString("hex") ?? "",
          time: "2026-01-01T00:00:00.000Z",
        },
        { secretKey, publicKey: getPublicKey(secretKey) },
      );
      await db.put(checkpointKey(3), Buffer.from(text));
      await db.put(FORMAT_KEY, Buffer.from("1"));
      await db.del(LINKED_KEY);
      return text;
    });
    const upgraded = await Ledger.open(dir, { keyFile });
    await upgraded.append(step(4));
    expect(await upgraded.verify()).toMatchObject({ ok: true, size: 4, checkpoints: 1 });
    await upgraded.close();
    expect(await readFile(checkpointLogPath(dir), "utf8")).toBe(old);
  });
});
