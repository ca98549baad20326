/**
 * Real signals at random points of a real `op apply` (the built binary): 40 veth pairs in a
 * fresh `ophd-` network namespace, one action at a time (--concurrency 1) so that a signal
 * lands among them. Afterwards every intent in the ledger has an outcome, the ledger
 * verifies, the lock is free, the exit code is the signal's, and the next apply converges.
 */
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/index.js";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";

let sandbox: CliSandbox;
let netns: string;
beforeEach(() => {
  sandbox = createCliSandbox();
  netns = `ophd-sig-${randomBytes(3).toString("hex")}`;
  execFileSync("ip", ["netns", "add", netns]);
});
afterEach(() => {
  execFileSync("ip", ["netns", "delete", netns]);
  sandbox.cleanup();
});

const links = 40;
function stateFile(): string {
  const interfaces = Array.from({ length: links }, (_, i) => ({
    name: `ophd${i}`,
    type: "veth",
    veth: { peer: `ophd${i}p` },
  }));
  const file = join(sandbox.dir, "state.json");
  writeFileSync(file, JSON.stringify({ version: 1, plugins: { network: { interfaces } } }));
  return file;
}

const startApply = (file: string) =>
  sandbox.start(["apply", file, "--concurrency", "1"], { netns });

/** Resolves once the run prints `text` (it has reached that point). */
function reached(child: ChildProcess, text: string, stream: "stdout" | "stderr" = "stdout") {
  return new Promise<void>((resolve) => {
    let seen = "";
    child[stream]?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) resolve();
    });
  });
}

interface Exported {
  seq: number;
  run: string;
  target: string;
  status: string;
}

function ledgerRecords(): Exported[] {
  if (!existsSync(sandbox.env.OP_LEDGER as string)) return [];
  const out = sandbox.op(["ledger", "export"]);
  expect(out.status, out.stderr).toBe(0);
  return out.stdout
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Exported);
}

function expectEveryIntentClosed(records: readonly Exported[]): void {
  for (const intent of records.filter((r) => r.status === "intent")) {
    const outcome = records.find(
      (r) =>
        r.seq > intent.seq &&
        r.run === intent.run &&
        r.target === intent.target &&
        ["ok", "failed", "unknown"].includes(r.status),
    );
    expect(outcome, `intent ${intent.seq} (${intent.target}) has no outcome`).toBeDefined();
  }
}

function expectLockFree(): void {
  const probe = spawnSync("flock", ["-n", sandbox.env.OP_LOCK as string, "true"]);
  expect(probe.status).toBe(0);
}

function expectLedgerVerifies(): void {
  if (!existsSync(sandbox.env.OP_LEDGER as string)) return;
  const verify = sandbox.op(["ledger", "verify"]);
  expect(verify.status, verify.stdout + verify.stderr).toBe(0);
}

function expectConvergesAfter(file: string): void {
  const again = sandbox.op(["apply", file], { netns });
  expect(again.status, again.stderr).toBe(0);
}

describe("op apply under SIGTERM and SIGINT", () => {
  it("stops at random points with every outcome recorded, the lock free and exit 143", async () => {
    const file = stateFile();
    // Random points from before the plan to the end of the run; the seed is printed.
    const delays = Array.from({ length: 4 }, () => Math.floor(Math.random() * 700));
    for (const delay of delays) {
      const { child, done } = startApply(file);
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGTERM");
      const result = await done;
      const context = `signal after ${delay} ms: ${result.stderr}`;
      // Killed by the signal itself (null): it came while node was starting, before op set
      // its handlers, so before op read or changed anything.
      if (result.status === null) {
        expect(result.signal, context).toBe("SIGTERM");
        expect(result.stdout, context).toBe("");
      } else expect([0, 143], context).toContain(result.status);
      if (result.status === 143) expect(result.stderr, context).toMatch(/op: SIGTERM/);
      expectEveryIntentClosed(ledgerRecords());
      expectLockFree();
      expectLedgerVerifies();
      expectConvergesAfter(file);
      execFileSync("ip", ["netns", "delete", netns]);
      execFileSync("ip", ["netns", "add", netns]);
    }
  });

  it("once changing, finishes the action in flight, says what was and was not done, and exits 130 on SIGINT", async () => {
    const file = stateFile();
    const { child, done } = startApply(file);
    await reached(child, "ok      create network");
    child.kill("SIGINT");
    const result = await done;
    expect(result.status, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/op: SIGINT: starting no new action/);
    expect(result.stderr).toMatch(/Interrupted by SIGINT \(run [0-9a-f-]+\): \d+ applied/);
    expect(result.stderr).toMatch(/Not done:\n {2}not run create network ophd/);
    const records = ledgerRecords();
    expectEveryIntentClosed(records);
    const intents = records.filter((r) => r.status === "intent").length;
    expect(intents).toBeGreaterThan(0);
    expect(intents).toBeLessThan(links);
    expectLockFree();
    expectLedgerVerifies();
    expectConvergesAfter(file);
  });

  it("after kill -9 at a random point, the next run reports what has no outcome and settles it", async () => {
    const file = stateFile();
    const delays = Array.from({ length: 3 }, () => 300 + Math.floor(Math.random() * 600));
    for (const delay of delays) {
      const { child, done } = startApply(file);
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      await done;
      // The kernel released the lock with the process.
      expectLockFree();
      const open = ledgerRecords().filter(
        (r, _, all) =>
          r.status === "intent" &&
          !all.some(
            (o) =>
              o.seq > r.seq &&
              o.target === r.target &&
              (o.run === r.run ? ["ok", "failed"].includes(o.status) : o.status === "settled"),
          ),
      );
      const next = sandbox.op(["apply", file], { netns });
      const context = `kill -9 after ${delay} ms: ${next.stderr}`;
      expect(next.status, context).toBe(0);
      if (open.length > 0) {
        expect(next.stderr, context).toMatch(
          new RegExp(`was interrupted: ${open.length} actions? without an outcome`),
        );
      } else expect(next.stderr, context).not.toContain("was interrupted");
      const settled = ledgerRecords()
        .filter((r) => r.status === "settled")
        .map((r) => r.target);
      for (const intent of open) expect(settled, context).toContain(intent.target);
      expectLedgerVerifies();
      execFileSync("ip", ["netns", "delete", netns]);
      execFileSync("ip", ["netns", "add", netns]);
    }
  });

  it("exits at once on a second signal, with the lock free and the ledger whole", async () => {
    const file = stateFile();
    const { child, done } = startApply(file);
    await reached(child, "ok      create network");
    child.kill("SIGTERM");
    // Two signals sent at once may reach the process as one: the second goes once the first
    // has been handled.
    await reached(child, "op: SIGTERM: starting no new action", "stderr");
    child.kill("SIGTERM");
    const result = await done;
    expect(result.status, result.stderr).toBe(143);
    expect(result.stderr).toMatch(/SIGTERM again: stopping now/);
    expectLockFree();
    expectLedgerVerifies();
    expectConvergesAfter(file);
  });
});

describe("an earlier run's records without an outcome or a signature", () => {
  /** Appends `records` as a run that was killed would have left them: no checkpoint after. */
  async function leftByKilledRun(
    records: { target: string; status: "intent" | "ok" }[],
  ): Promise<void> {
    const ledger = await Ledger.open(sandbox.env.OP_LEDGER as string, {
      keyFile: sandbox.env.OP_LEDGER_KEY as string,
    });
    try {
      for (const { target, status } of records)
        await ledger.append({
          run: "3df1c0de-dead",
          plugin: "network",
          action: "create",
          target,
          status,
        });
    } finally {
      await ledger.close();
    }
  }

  it("op apply says which run was interrupted, settles each intent from its read, and signs", async () => {
    const file = stateFile();
    expectConvergesAfter(file);
    // ophd0 is as the file says; ophd1 was deleted by hand, so this run creates it again.
    execFileSync("ip", ["-n", netns, "link", "del", "ophd1"]);
    await leftByKilledRun([
      { target: "ophd0", status: "intent" },
      { target: "ophd1", status: "intent" },
    ]);
    const run = sandbox.op(["apply", file], { netns });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      "op: run 3df1c0de was interrupted: 2 actions without an outcome (create network ophd0; create network ophd1)",
    );
    expect(run.stdout).toContain(
      "settle create network ophd0: interrupted; this run found the host matching the file for ophd0",
    );
    expect(run.stdout).toContain(
      "settle create network ophd1: interrupted; this run found ophd1 still differing from the file and plans create",
    );
    const records = ledgerRecords() as (Exported & { settles?: number })[];
    const intents = records.filter((r) => r.run === "3df1c0de-dead").map((r) => r.seq);
    const settled = records.filter((r) => r.status === "settled");
    expect(settled.map((r) => [r.target, r.settles])).toEqual([
      ["ophd0", intents[0]],
      ["ophd1", intents[1]],
    ]);
    expectLedgerVerifies();
    // Settled once: the next run has nothing to say about them.
    const next = sandbox.op(["apply", file], { netns });
    expect(next.status).toBe(0);
    expect(next.stderr).not.toContain("was interrupted");
  });

  it("a run that changes nothing settles what it finds and signs records left unsigned", async () => {
    const file = stateFile();
    expectConvergesAfter(file);
    const signedBefore = sandbox.op(["ledger", "verify", "--json"]);
    const sizeBefore = (JSON.parse(signedBefore.stdout) as { size: number }).size;
    await leftByKilledRun([
      { target: "ophd2", status: "intent" },
      { target: "ophd2", status: "ok" },
    ]);
    const unsigned = JSON.parse(sandbox.op(["ledger", "verify", "--json"]).stdout) as {
      checkpoint?: { size: number };
    };
    expect(unsigned.checkpoint?.size).toBe(sizeBefore);
    const run = sandbox.op(["apply", file], { netns });
    expect(run.status, run.stderr).toBe(0);
    const signed = JSON.parse(sandbox.op(["ledger", "verify", "--json"]).stdout) as {
      ok: boolean;
      size: number;
      checkpoint?: { size: number };
    };
    expect(signed.ok).toBe(true);
    expect(signed.checkpoint?.size).toBe(signed.size);
    expect(signed.size).toBe(sizeBefore + 2);
  });
});
