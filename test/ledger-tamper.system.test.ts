/**
 * A damaged ledger is never written to: after each kind of tampering with the real LevelDB
 * files (and the key and checkpoint log beside them), the next `op apply` refuses with exit 3
 * before it changes the host, and the damage is still there for `op ledger verify`. The
 * applies change an nftables table in a network namespace of the test's own
 * (test/support/ledger.ts).
 */
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHECKPOINT_RANGE, HEAD_KEY, recordKey } from "../src/ledger/store.js";
import { withRawDb } from "../src/ledger/testing.js";
import { createLedgerSandbox, type LedgerSandbox } from "./support/ledger.js";

let box: LedgerSandbox;

const stateFile = (name: string, rule: string) => box.stateFile(name, rule);
const op = (args: string[]) => box.op(args);
const ruleset = () => box.ruleset();
const ledgerDir = () => box.cli.env.OP_LEDGER as string;
const keyFile = () => box.cli.env.OP_LEDGER_KEY as string;

beforeEach(() => {
  box = createLedgerSandbox("opl_tamper");
  // Two runs: records 1-3 and 4-6 (each run's pre-image record, its intent and its outcome),
  // each signed by a checkpoint.
  for (const [name, rule] of [
    ["one.json", "ip saddr 198.18.1.1 drop"],
    ["two.json", "ip saddr 198.18.1.2 drop"],
  ] as const) {
    const applied = op(["apply", stateFile(name, rule)]);
    expect(applied.status, applied.stderr).toBe(0);
  }
  // Nothing else opens the ledger here: each open turns LevelDB's .log into a table, and the
  // .log case needs the last run's records still in it.
});

afterEach(() => box.remove());

/**
 * The next apply must refuse with exit 3, naming the damage, and change nothing; so must an
 * apply with nothing to change (a cron run on a converged host must not hide the damage).
 */
function expectRefused(message: RegExp): void {
  const before = ruleset();
  for (const file of [
    stateFile("three.json", "ip saddr 198.18.1.3 drop"),
    stateFile("two.json", "ip saddr 198.18.1.2 drop"),
  ]) {
    const result = op(["apply", file]);
    expect(result.status, result.stderr).toBe(3);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/ledger-corrupt/);
    expect(result.stderr).not.toMatch(/bug in op| {4}at /);
    expect(ruleset()).toBe(before);
  }
}

function ledgerFiles(suffix: string): string[] {
  return readdirSync(ledgerDir())
    .filter((name) => name.endsWith(suffix))
    .map((name) => join(ledgerDir(), name));
}

function zeroBytes(file: string, at: number, length: number): void {
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, Buffer.alloc(length), 0, length, at);
  } finally {
    closeSync(fd);
  }
}

function flipBytes(file: string, from: number, to: number): void {
  const bytes = readFileSync(file);
  for (let at = from; at < to; at += 7) bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  writeFileSync(file, bytes);
}

describe("the next apply refuses a damaged ledger with exit 3", () => {
  it("a record of the last run altered", async () => {
    await withRawDb(ledgerDir(), async (db) => {
      const value = await db.get(recordKey(5));
      if (value === undefined) throw new Error("record 5 missing");
      value[value.length - 2] = (value[value.length - 2] ?? 0) ^ 1;
      await db.put(recordKey(5), value);
    });
    expectRefused(/record 5: hash does not match its content/);
    expect(op(["ledger", "verify"]).stdout).toMatch(/ledger BAD: record 5\b/);
  });

  it("the head pointer deleted (which apply used to rebuild, erasing the evidence)", async () => {
    await withRawDb(ledgerDir(), (db) => db.del(HEAD_KEY));
    expectRefused(/the head pointer is missing/);
    expectRefused(/the head pointer is missing/);
    expect(op(["ledger", "verify"]).status).toBe(3);
  });

  it("CURRENT deleted (a directory of LevelDB files is a damaged ledger, not a new one)", () => {
    rmSync(join(ledgerDir(), "CURRENT"));
    expectRefused(/holds LevelDB files .* but no CURRENT file/);
    expect(existsSync(join(ledgerDir(), "CURRENT"))).toBe(false);
    expect(op(["ledger", "verify"]).status).toBe(3);
  });

  it("the ledger directory removed while its checkpoint log remains", () => {
    rmSync(ledgerDir(), { recursive: true });
    expectRefused(/is missing, but its checkpoint log .* is there/);
    expect(existsSync(ledgerDir())).toBe(false);
  });

  it("the secret key deleted while checkpoints exist (no new key, .pub untouched)", () => {
    const pub = statSync(`${keyFile()}.pub`);
    rmSync(keyFile());
    expectRefused(/signing key .* is missing but the ledger has checkpoints signed with it/);
    expect(existsSync(keyFile())).toBe(false);
    expect(statSync(`${keyFile()}.pub`).mtimeMs).toBe(pub.mtimeMs);
  });

  it("the secret key replaced by another key", () => {
    const other = Buffer.from(ed25519.keygen().secretKey).toString("base64");
    writeFileSync(keyFile(), `${other}\n`, { mode: 0o600 });
    expectRefused(/does not verify with the ledger key/);
  });

  it("corrupted .ldb blocks (LevelDB's corruption, not a bug in op)", () => {
    const tables = ledgerFiles(".ldb");
    expect(tables.length).toBeGreaterThan(0);
    // Bit rot in the first data block of each table (its footer left whole).
    for (const table of tables) flipBytes(table, 16, Math.min(1024, statSync(table).size - 48));
    expectRefused(/LevelDB reports corruption: .* in (its file|one of its files) .*\d+\.ldb/);
  });

  it("1 KiB of LevelDB's .log zeroed (records silently dropped by LevelDB's recovery)", () => {
    const [log] = ledgerFiles(".log");
    if (log === undefined) throw new Error("no .log file");
    zeroBytes(log, 0, 1024);
    expectRefused(/checkpoint log holds a checkpoint at size 6 that the ledger lacks/);
  });

  it("every checkpoint deleted", async () => {
    await withRawDb(ledgerDir(), async (db) => {
      for await (const key of db.keys(CHECKPOINT_RANGE)) await db.del(key);
    });
    expectRefused(/checkpoint log holds a checkpoint at size 6 that the ledger lacks/);
  });

  it("every checkpoint deleted, and the checkpoint log too", async () => {
    await withRawDb(ledgerDir(), async (db) => {
      for await (const key of db.keys(CHECKPOINT_RANGE)) await db.del(key);
    });
    rmSync(`${ledgerDir()}.checkpoints`);
    expectRefused(/record 4: prev does not match record 3/);
  });

  it("the checkpoint log deleted", () => {
    rmSync(`${ledgerDir()}.checkpoints`);
    expectRefused(/checkpoint log .* is missing/);
  });
});

describe("op ledger repair", () => {
  it("keeps the damaged ledger aside, untouched, and starts a new one that records why", async () => {
    await withRawDb(ledgerDir(), (db) => db.del(HEAD_KEY));
    expectRefused(/the head pointer is missing/);
    const repaired = op(["ledger", "repair", "--json"]);
    expect(repaired.status, repaired.stderr).toBe(0);
    const { movedTo, problem, seq } = JSON.parse(repaired.stdout) as Record<string, unknown>;
    expect(problem).toMatch(/the head pointer is missing/);
    expect(seq).toBe(1);

    // The new ledger says what it replaces; the old one is still damaged, as it was.
    expect(JSON.parse(op(["ledger", "show", "1"]).stdout)).toMatchObject({
      plugin: "ledger",
      target: "ledger",
      changes: {
        replaces: movedTo,
        damage: problem,
        lastCheckpoint: expect.stringMatching(/^op ledger checkpoint\norigin /),
      },
    });
    expect(op(["ledger", "verify"]).status).toBe(0);
    const old = box.op(["ledger", "verify"], { OP_LEDGER: movedTo as string });
    expect(old.status).toBe(3);
    expect(old.stdout).toMatch(/head pointer is missing/);
    expect(existsSync(`${movedTo as string}.checkpoints`)).toBe(true);

    const next = op(["apply", stateFile("three.json", "ip saddr 198.18.1.3 drop")]);
    expect(next.status, next.stderr).toBe(0);
    expect(op(["ledger", "verify"]).stdout).toMatch(/ledger OK: 4 records/);
  });

  it("refuses to touch a ledger that is not damaged", () => {
    const result = op(["ledger", "repair"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/is not damaged: nothing to repair/);
    expect(op(["ledger", "verify"]).stdout).toMatch(/ledger OK: 6 records/);
  });
});
