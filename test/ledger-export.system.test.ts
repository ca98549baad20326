/**
 * A third party can verify `op ledger export` without op: an independent verifier in Python
 * (standard library only, test/ledger_export_verify.py, written from docs/ledger.md) checks a
 * real export of the built op, and finds what was changed in it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/index.js";
import { type CliSandbox, createCliSandbox, repoRoot } from "./support/cli.js";

let sandbox: CliSandbox;

beforeEach(() => {
  sandbox = createCliSandbox();
});
afterEach(() => sandbox.cleanup());

function pythonVerify(lines: string[]): { status: number; stdout: string } {
  const file = join(sandbox.dir, `export-${Math.random()}.jsonl`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  const result = spawnSync("python3", [join(repoRoot, "test", "ledger_export_verify.py"), file], {
    encoding: "utf8",
  });
  return { status: result.status ?? -1, stdout: result.stdout + result.stderr };
}

/** A ledger of several runs, each signed, with every kind of value a record can carry. */
async function buildLedger(): Promise<void> {
  const ledger = await Ledger.open(sandbox.env.OP_LEDGER as string, {
    keyFile: sandbox.env.OP_LEDGER_KEY as string,
    origin: "op@exported-host",
  });
  const run = (name: string) => ({ run: name, plugin: "lxc", action: "create" as const });
  await ledger.append({ ...run("r1"), target: "ct1", status: "intent", changes: { memory: 1024 } });
  await ledger.append({ ...run("r1"), target: "ct1", status: "ok" });
  await ledger.checkpoint();
  await ledger.append({
    ...run("r2"),
    target: "ct2 é😀",
    status: "intent",
    changes: [{ path: "limits", before: null, after: { cpu: 0.5, big: 1e21, tiny: 1e-7, n: -3 } }],
  });
  await ledger.append({
    ...run("r2"),
    target: "ct2 é😀",
    status: "unknown",
    error: 'Incus went away\n"after" the request\t\u0001',
  });
  await ledger.checkpoint();
  await ledger.append({
    ...run("r3"),
    target: "ct2 é😀",
    status: "settled",
    settles: 3,
    changes: { found: "created", "\u00e9": 1, a: 2, B: 3 },
  });
  await ledger.checkpoint();
  await ledger.append({ ...run("r4"), target: "ct3", status: "intent" });
  await ledger.close();
}

describe("op ledger export", () => {
  it("is verified by an independent Python verifier, which also catches changes", async () => {
    await buildLedger();
    const exported = sandbox.op(["ledger", "export"]);
    expect(exported.status, exported.stderr).toBe(0);
    const lines = exported.stdout.trim().split("\n");
    expect(JSON.parse(lines[0] ?? "")).toMatchObject({
      export: "op ledger",
      origin: "op@exported-host",
      linkedFrom: 0,
    });
    expect(pythonVerify(lines)).toEqual({ status: 0, stdout: "OK 6 records, 3 checkpoints\n" });

    const changed = (index: number, edit: (entry: Record<string, unknown>) => void) => {
      const copy = [...lines];
      const entry = JSON.parse(copy[index] ?? "") as Record<string, unknown>;
      edit(entry);
      copy[index] = JSON.stringify(entry);
      return pythonVerify(copy);
    };
    // Line 0 is the header; record 1 is line 1, record 3 line 4 (after a checkpoint line).
    expect(changed(4, (e) => Object.assign(e, { target: "ct9" })).stdout).toMatch(
      /BAD: record 3: hash does not match/,
    );
    expect(changed(0, (e) => Object.assign(e, { origin: "op@elsewhere" })).stdout).toMatch(
      /BAD: the header's genesis/,
    );
    const withoutCheckpoint = lines.filter((_line, i) => i !== 3);
    expect(pythonVerify(withoutCheckpoint).stdout).toMatch(
      /BAD: record 3: prev does not link to record 2/,
    );
    const withoutRecord = lines.filter((_line, i) => i !== 2);
    expect(pythonVerify(withoutRecord).status).toBe(1);
  });

  it("follows a key rotation: the new key is recorded, and the export still verifies", async () => {
    await buildLedger();
    const rotated = sandbox.op(["ledger", "rotate-key", "--json"]);
    expect(rotated.status, rotated.stderr).toBe(0);
    const { next, seq } = JSON.parse(rotated.stdout) as { next: string; seq: number };
    expect(seq).toBe(7);
    expect(sandbox.op(["ledger", "verify"]).stdout).toMatch(/ledger OK: 7 records/);
    const lines = sandbox.op(["ledger", "export"]).stdout.trim().split("\n");
    expect(pythonVerify(lines)).toEqual({ status: 0, stdout: "OK 7 records, 4 checkpoints\n" });
    const record = lines.map((line) => JSON.parse(line)).find((entry) => entry.seq === 7);
    expect(record).toMatchObject({ plugin: "ledger", target: "signing-key" });
    expect(record.changes[0].after).toBe(next);
  });

  it("verify warns about a key others may read, and still says whether the ledger is intact", async () => {
    await buildLedger();
    chmodSync(sandbox.env.OP_LEDGER_KEY as string, 0o644);
    const verify = sandbox.op(["ledger", "verify"]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/ledger OK: 6 records/);
    expect(verify.stderr).toMatch(
      /op: warning: the ledger key .* is readable by other users \(mode 0644\)/,
    );
    // Signing with it is refused: anyone who read it can forge checkpoints.
    expect(sandbox.op(["ledger", "rotate-key"]).status).toBe(1);
  });
});
