/**
 * Drift records, `op status` and the metrics file end to end: the built op against real nft
 * in a network namespace of its own (tables `opst_…`), with its ledger, lock, status and
 * metrics in a temporary sandbox. Drift is made by hand with nft, as an operator would.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;
let holder: ReturnType<typeof spawn> | undefined;

const table = (name: string, rules: string[]) => ({
  family: "inet",
  name,
  chains: [{ name: "input", type: "filter", hook: "input", priority: 0, policy: "accept", rules }],
});

function stateFile(): string {
  const path = join(sandbox.dir, "state.json");
  const tables = [table("opst_gone", []), table("opst_edited", ["tcp dport 22 accept"])];
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { nftables: { tables } } }));
  return path;
}

const op = (args: string[]) => sandbox.op(args, { netns: netns.name });
const nft = (...args: string[]) => netns.run("nft", args);

function records(): Record<string, unknown>[] {
  const log = op(["ledger", "log", "--json"]);
  expect(log.status, log.stderr).toBe(0);
  return log.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function status(): Record<string, unknown> {
  const result = op(["status", "--json"]);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

/** Hand-made drift: one table deleted, a rule added to the other. */
function drift(): void {
  nft("delete", "table", "inet", "opst_gone");
  nft("add", "rule", "inet", "opst_edited", "input", "udp", "dport", "53", "accept");
}

beforeEach(() => {
  sandbox = createCliSandbox();
  netns = createNetns("opst");
});
afterEach(() => {
  holder?.kill();
  holder = undefined;
  netns.remove();
  sandbox.cleanup();
});

describe("op apply --check with drift", () => {
  it("records one drift record per resource, shown by log and status, and verify passes; apply corrects it", () => {
    const file = stateFile();
    const metrics = join(sandbox.dir, "op.prom");
    const first = op(["apply", file]);
    expect(first.status, first.stderr).toBe(0);
    const applied = records().length;
    drift();

    const check = op(["apply", file, "--check", "--json", "--metrics-file", metrics]);
    expect(check.status, check.stderr).toBe(2);
    expect(JSON.parse(check.stdout)).toMatchObject({ drift: true });
    const found = records().slice(applied);
    // In the plan's order.
    expect(found.map((r) => [r.status, r.action, r.plugin, r.target])).toEqual([
      ["drift", "modify", "nftables", "inet/opst_edited"],
      ["drift", "create", "nftables", "inet/opst_gone"],
    ]);
    // What differs, as the plan shows it: the modify's fields, the created table whole.
    expect(Array.isArray(found[0]?.changes) && found[0].changes.length).toBeGreaterThan(0);
    expect(found[1]?.changes).toMatchObject({ after: { name: "opst_gone" } });
    expect(new Set(found.map((r) => r.run)).size).toBe(1);
    expect(JSON.parse(check.stdout).run).toBe(found[0]?.run);
    const log = op(["ledger", "log"]).stdout;
    expect(log).toMatch(/DRIFT\s+create\s+nftables inet\/opst_gone/);
    expect(log).toMatch(/DRIFT\s+modify\s+nftables inet\/opst_edited {2}differs: /);

    // Signed: the checkpoint covers the drift records, and verify accepts them.
    const verify = op(["ledger", "verify"]);
    expect(verify.status, verify.stdout).toBe(0);
    expect(verify.stdout).toContain(`checkpoint at ${applied + 2} verified`);

    const afterCheck = status();
    expect(afterCheck).toMatchObject({
      recorded: true,
      lastRun: { mode: "check", file, exit: 2, actions: 2, run: found[0]?.run },
      lastDrift: {
        mode: "check",
        resources: { nftables: ["table inet/opst_edited", "table inet/opst_gone"] },
      },
      lastError: null,
      runs: { apply: 1, check: 1 },
      ledger: { state: "ok", seq: applied + 2, checkpoint: { size: applied + 2 } },
    });
    const text = readFileSync(metrics, "utf8");
    expect(text).toContain('op_drift_resources{plugin="nftables"} 2\n');
    expect(text).toContain(`op_ledger_records ${applied + 2}\n`);
    expect(text).toContain('op_runs_total{mode="check"} 1\n');

    const fix = op(["apply", file, "--metrics-file", metrics]);
    expect(fix.status, fix.stderr).toBe(0);
    expect(nft("list", "table", "inet", "opst_gone")).toContain("chain input");
    expect(nft("list", "table", "inet", "opst_edited")).not.toContain("udp dport 53");
    expect(status()).toMatchObject({
      lastRun: { mode: "apply", exit: 0, actions: 2 },
      drift: { resources: {} },
      lastDrift: { mode: "check" },
    });
    expect(readFileSync(metrics, "utf8")).not.toContain("op_drift_resources{");

    // A check that finds nothing records nothing, and says nothing of it.
    const size = records().length;
    const clean = op(["apply", file, "--check"]);
    expect(clean.status).toBe(0);
    expect(clean.stdout).not.toContain("recorded");
    expect(records().length).toBe(size);
    expect(status()).toMatchObject({ runs: { apply: 2, check: 2 }, failures: {} });

    // As text, the check says that it recorded the drift, and under which run.
    drift();
    const again = op(["apply", file, "--check"]);
    expect(again.status).toBe(2);
    expect(again.stdout).toMatch(
      /\nDrift recorded in the ledger: 2 drift record\(s\), run [0-9a-f-]{36}\.\n$/,
    );
    expect(records().length).toBe(size + 2);
  });

  it("refuses while another run holds the lock: exit 75 naming it, nothing recorded", () => {
    const file = stateFile();
    expect(op(["apply", file]).status).toBe(0);
    drift();
    const before = records().length;
    const lockFile = sandbox.env.OP_LOCK as string;
    holder = spawn("flock", ["-o", lockFile, "sleep", "60"]);
    while (spawnSync("flock", ["-n", lockFile, "true"]).status === 0) {}
    writeFileSync(lockFile, `${holder.pid}\n`);

    const check = op(["apply", file, "--check"]);
    expect(check.status).toBe(75);
    expect(check.stderr).toContain(`pid ${holder.pid}`);
    expect(check.stdout).toBe("");
    expect(records().length).toBe(before);
    // The status says the check was refused, and why.
    expect(status()).toMatchObject({
      lastRun: { mode: "check", exit: 75 },
      lastError: { mode: "check", message: expect.stringContaining(`pid ${holder.pid}`) },
      failures: { check: 1 },
    });
  });

  it("refuses a metrics file it cannot write before the run: nothing checked, recorded or written", () => {
    const file = stateFile();
    expect(op(["apply", file]).status).toBe(0);
    drift();
    const before = records().length;
    const statusBefore = readFileSync(sandbox.env.OP_STATUS as string, "utf8");
    for (const [path, why] of [
      [join(sandbox.dir, "missing", "op.prom"), "is not a directory"],
      [sandbox.dir, "is a directory"],
    ] as const) {
      const result = op(["apply", file, "--check", "--metrics-file", path]);
      expect(result.status, path).toBe(64);
      expect(result.stderr).toContain(why);
    }
    expect(records().length).toBe(before);
    expect(readFileSync(sandbox.env.OP_STATUS as string, "utf8")).toBe(statusBefore);
    expect(existsSync(join(sandbox.dir, "missing"))).toBe(false);
  });
});

describe("op status on a host where op has not run", () => {
  it("says there is no status or ledger yet, without failing", () => {
    const text = op(["status"]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain("no run recorded yet");
    expect(text.stdout).toContain("no ledger at");
    expect(status()).toMatchObject({ recorded: false, ledger: { state: "missing" } });
  });
});
