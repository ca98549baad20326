/** `op ledger rotate-key`: the new public key is a record of the chain, signed by the old key. */
import { copyFile, cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint, signatureValid } from "./checkpoint.js";
import { getPublicKey, keygen, signMessage } from "./ed25519.js";
import { encodeKey } from "./keys.js";
import { Ledger, type RecordInput } from "./ledger.js";
import { checkpointKey, rotationKey } from "./store.js";
import { makeTempDir, removeTempDirs, withRawDb } from "./testing.js";

afterEach(removeTempDirs);

const step = (n: number): RecordInput => ({
  run: "run-1",
  plugin: "network",
  action: "modify",
  target: `br${n}`,
  status: "ok",
});

describe("key rotation", () => {
  it("records the new key, signs that with the old one, and signs later checkpoints with the new", async () => {
    const root = await makeTempDir("rotate");
    const dir = join(root, "ledger");
    const keyFile = join(root, "keys", "ledger.key");
    const open = (create = true) => Ledger.open(dir, { keyFile, origin: "op@test", create });
    const ledger = await open();
    await ledger.append(step(1));
    await ledger.checkpoint();
    const oldPublic = (await readFile(`${keyFile}.pub`, "utf8")).trim();
    const oldSecret = await readFile(keyFile, "utf8");

    const rotated = await ledger.rotateKey("run-rotate");
    expect(rotated.previous).toBe(oldPublic);
    expect(rotated.seq).toBe(2);
    expect((await readFile(`${keyFile}.pub`, "utf8")).trim()).toBe(rotated.next);
    expect(await readFile(`${keyFile}.old`, "utf8")).toBe(oldSecret);
    expect(await ledger.show(2)).toMatchObject({
      plugin: "ledger",
      target: "signing-key",
      changes: [{ path: "publicKey", before: oldPublic, after: rotated.next }],
    });
    await ledger.append(step(3));
    const later = parseCheckpoint(await ledger.checkpoint());
    expect(later.key).toBe(rotated.next);
    await ledger.close();

    // The rotation record's own checkpoint is the old key's signature over the new key.
    const endorsement = await withRawDb(dir, (db) => db.get(checkpointKey(2)));
    const parsed = parseCheckpoint(endorsement?.toString("utf8") ?? "");
    expect(signatureValid(parsed, Buffer.from(oldPublic, "base64"))).toBe(true);

    const reader = await open(false);
    expect(await reader.verify()).toMatchObject({ ok: true, size: 3, checkpoints: 3 });
    await reader.close();
    const writer = await open();
    await writer.append(step(4));
    await writer.close();

    // Putting the old key back is refused: it is not the key the rotation installed.
    await copyFile(`${keyFile}.old`, keyFile);
    const error = await open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("ledger-corrupt");
  });

  it("a rotation forged by someone without the current key is refused", async () => {
    const root = await makeTempDir("rotate");
    const keyFile = join(root, "keys", "ledger.key");
    const dir = join(root, "ledger");
    const real = await Ledger.open(dir, { keyFile, origin: "op@test" });
    await real.append(step(1));
    await real.checkpoint();
    await real.close();
    const ours = (await readFile(`${keyFile}.pub`, "utf8")).trim();

    // Someone who can write the files but has not our key builds another history with a key
    // of theirs, "rotated" to ours, and puts it in place of the ledger.
    const forgedDir = join(root, "forged");
    const theirKey = join(root, "theirs", "ledger.key");
    const forged = await Ledger.open(forgedDir, { keyFile: theirKey, origin: "op@test" });
    for (let n = 1; n <= 3; n++) await forged.append(step(n + 100));
    const { seq, previous } = await forged.rotateKey("run-forged");
    await forged.close();
    await withRawDb(forgedDir, (db) =>
      db.put(rotationKey(seq), Buffer.from(JSON.stringify({ previous, next: ours }))),
    );
    await rm(dir, { recursive: true });
    await cp(forgedDir, dir, { recursive: true });
    await cp(`${forgedDir}.checkpoints`, `${dir}.checkpoints`);

    const error = await Ledger.open(dir, { keyFile, origin: "op@test" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toMatch(
      /key rotation at record 4 is not countersigned by the key it installed/,
    );
    const reader = await Ledger.open(dir, { keyFile, create: false });
    expect(await reader.verify()).toMatchObject({
      ok: false,
      problem: "the key rotation at record 4 is not countersigned by the key it installed (forged)",
    });
    await reader.close();
  });
});

describe("op ledger verify of key rotations", () => {
  /** Record 1 and its checkpoint, then `count` rotations (records 2, 3, ...), closed. */
  async function rotated(count: number) {
    const root = await makeTempDir("rotate");
    const keyFile = join(root, "keys", "ledger.key");
    const dir = join(root, "ledger");
    const ledger = await Ledger.open(dir, { keyFile, origin: "op@test" });
    await ledger.append(step(1));
    await ledger.checkpoint();
    for (let n = 0; n < count; n++) await ledger.rotateKey(`run-rotate-${n}`);
    await ledger.close();
    return { dir, keyFile };
  }

  async function verifyReadOnly(dir: string, keyFile: string) {
    const reader = await Ledger.open(dir, { keyFile, create: false });
    try {
      return await reader.verify();
    } finally {
      await reader.close();
    }
  }

  it("passes two rotations, each following the one before", async () => {
    const { dir, keyFile } = await rotated(2);
    expect(await verifyReadOnly(dir, keyFile)).toMatchObject({ ok: true, size: 3 });
  });

  it("names a rotation whose checkpoint was removed", async () => {
    const { dir, keyFile } = await rotated(1);
    await withRawDb(dir, (db) => db.del(checkpointKey(2)));
    expect(await verifyReadOnly(dir, keyFile)).toMatchObject({
      ok: false,
      firstBad: 2,
      problem: "the key rotation at record 2 has no checkpoint (removed)",
    });
  });

  it("names a rotation that does not start from the key the one before installed", async () => {
    const { dir, keyFile } = await rotated(2);
    // Rotation 2 is made to install a key of someone else's, countersigned by it: rotation
    // 3 still starts from the key rotation 2 really installed.
    const theirs = keygen();
    await withRawDb(dir, async (db) => {
      const stored = JSON.parse((await db.get(rotationKey(2)))?.toString("utf8") ?? "{}");
      const text = (await db.get(checkpointKey(2))) ?? Buffer.alloc(0);
      const endorsement = encodeKey(signMessage(text, theirs.secretKey));
      const forged = { ...stored, next: encodeKey(theirs.publicKey), endorsement };
      await db.put(rotationKey(2), Buffer.from(JSON.stringify(forged)));
    });
    expect(await verifyReadOnly(dir, keyFile)).toMatchObject({
      ok: false,
      firstBad: 3,
      problem: "the key rotation at record 3 does not follow the one at record 2 (forged)",
    });
  });

  it("names a ledger key put back to the one a rotation replaced", async () => {
    const { dir, keyFile } = await rotated(1);
    await copyFile(`${keyFile}.old`, keyFile);
    const secret = Buffer.from((await readFile(keyFile, "utf8")).trim(), "base64");
    await writeFile(`${keyFile}.pub`, `${encodeKey(getPublicKey(secret))}\n`);
    expect(await verifyReadOnly(dir, keyFile)).toMatchObject({
      ok: false,
      problem: "the ledger key is not the one the key rotation at record 2 installed",
    });
  });
});
