/**
 * End-to-end tests of the built binary against the real nft, each in its own network
 * namespace (the host's ruleset is never read into a plan or touched).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { recordKey } from "../src/ledger/store.js";
import { withRawDb } from "../src/ledger/testing.js";
import { type CliSandbox, createCliSandbox, opBinary, repoRoot } from "./support/cli.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;

function stateFile(name: string, tables: unknown[]): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { nftables: { tables } } }, null, 2));
  return path;
}

const table = (rules: string[], extra: Record<string, unknown> = {}) => ({
  family: "inet",
  name: "optest",
  chains: [{ name: "input", type: "filter", hook: "input", priority: 0, policy: "accept", rules }],
  ...extra,
});

const op = (args: string[]) => sandbox.op(args, { netns: netns.name });
const ruleset = () => netns.run("nft", ["list", "ruleset"]);
const allRecords = () => {
  const result = op(["ledger", "log", "--json"]);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
};
/**
 * The plugins' records: each run that changes the host also starts with its pre-image record
 * (plugin `op`, target `pre-image`; the first test asserts it), left out here.
 */
const ledgerRecords = () => allRecords().filter((record) => record.plugin !== "op");

beforeEach(() => {
  sandbox = createCliSandbox();
  netns = createNetns("cli");
});
afterEach(() => {
  netns.remove();
  sandbox.cleanup();
});

describe("op without a host", () => {
  it("prints its version and help with examples on every command", () => {
    expect(op(["--version"]).stdout.trim()).toBe(
      `op ${JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version}`,
    );
    for (const command of [
      [],
      ["apply"],
      ["plan"],
      ["query"],
      ["validate"],
      ["export"],
      ["doctor"],
      ["status"],
      ["watch"],
      ["ledger"],
      ["ledger", "verify"],
    ]) {
      const help = op([...command, "--help"]);
      expect(help.status, command.join(" ")).toBe(0);
      expect(help.stdout, command.join(" ")).toContain("Examples:");
    }
  });

  it("starts from the build's startup snapshot, and behaves the same from its modules", () => {
    const trace = spawnSync("sh", ["-x", opBinary, "--help"], { encoding: "utf8" });
    expect(trace.stderr).toMatch(/--snapshot-blob \S+\/dist\/op\.blob -- --help/);
    expect(trace.stdout).toBe(op(["--help"]).stdout);

    // A YAML file: the parser, the validators and the plugin checks all run.
    const file = join(sandbox.dir, "s.yaml");
    writeFileSync(file, "version: 1\nplugins:\n  nftables:\n    tables: []\n");
    for (const args of [
      ["validate", file, "--json"],
      ["frobnicate"],
      ["query", "--plugin", "x"],
      ["watch", "-"],
    ]) {
      const fromSnapshot = sandbox.op(args);
      const fromModules = sandbox.op(args, { env: { OP_NO_SNAPSHOT: "1" } });
      expect(fromModules, args.join(" ")).toEqual(fromSnapshot);
    }
  });

  it("finds its tree through a symlink and from a relative path, with no helper process", () => {
    const link = join(sandbox.dir, "op-link");
    symlinkSync(opBinary, link);
    expect(spawnSync(link, ["--version"], { encoding: "utf8" }).stdout).toMatch(/^op \d/);
    const relative = spawnSync("scripts/op", ["--version"], { cwd: repoRoot, encoding: "utf8" });
    expect(relative.stdout).toMatch(/^op \d/);
    // Only a link costs a readlink; a direct start runs no process before node's exec.
    const direct = spawnSync("sh", ["-x", opBinary, "--help"], { encoding: "utf8" });
    expect(direct.stderr).not.toMatch(/readlink|dirname/);
    const linked = spawnSync("sh", ["-x", link, "--help"], { encoding: "utf8" });
    expect(linked.stderr).toContain(`readlink -f ${link}`);
    expect(linked.stderr).toContain(`--snapshot-blob ${repoRoot}/dist/op.blob`);
  });

  it("leaves glibc's tunables to the user: the launcher sets none", () => {
    const { GLIBC_TUNABLES: _, ...withoutTunables } = process.env;
    const traced = spawnSync("sh", ["-x", opBinary, "--help"], {
      encoding: "utf8",
      env: withoutTunables,
    }).stderr;
    expect(traced).toContain("--snapshot-blob");
    expect(traced).not.toMatch(/GLIBC_TUNABLES/);
  });

  it("rejects an invalid file with every problem and its JSON path, exit 1", () => {
    const file = join(sandbox.dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        plugins: { firewall: {}, nftables: { tables: [{ family: "inet6", name: "x" }] } },
      }),
    );
    const result = op(["validate", file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('/plugins/firewall: unknown plugin "firewall"');
    expect(result.stderr).toContain("/plugins/nftables/tables/0/family: must be one of");
    expect(result.stderr).toContain("hint:");

    const json = op(["validate", file, "--json"]);
    expect(json.status).toBe(1);
    const document = JSON.parse(json.stdout);
    expect(Object.keys(document)).toEqual(["format_version", "error"]);
    const { error } = document;
    expect(error.code).toBe("invalid-file");
    expect(error.details.length).toBeGreaterThanOrEqual(2);
    // Details are objects with the problem's JSON path, never lines to parse.
    expect(error.details).toContainEqual({
      path: "/plugins/firewall",
      message: expect.stringContaining('unknown plugin "firewall"'),
    });
    expect(error.details).toContainEqual(
      expect.objectContaining({ path: "/plugins/nftables/tables/0/family" }),
    );
  });

  it("runs each plugin's own checks too, still without reading the host", () => {
    const file = join(sandbox.dir, "dup.json");
    const twice = {
      family: "inet",
      name: "x",
      chains: [
        { name: "c", rules: [] },
        { name: "c", rules: [] },
      ],
    };
    writeFileSync(
      file,
      JSON.stringify({ version: 1, plugins: { nftables: { tables: [twice, twice] } } }),
    );
    const result = op(["validate", file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      '/plugins/nftables/tables/0/chains/1/name: chain "c" is given twice',
    );
    expect(result.stderr).toContain("/plugins/nftables/tables/1: table inet/x is given twice");
  });

  it("tells every network problem the file alone shows, each at the file's own path", () => {
    const file = join(sandbox.dir, "net.json");
    const bridge = (name: string, ports: string[]) => ({
      name,
      type: "bridge",
      ports,
      ipv4: { address: [{ ip: "198.18.4.1", prefix: 24 }] },
    });
    // The op-dbus spelling (plugins.net): the paths are the file's own.
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        plugins: { net: { interfaces: [bridge("opbr0", ["opbr0"]), bridge("opbr1", [])] } },
      }),
    );
    for (const command of ["validate", "plan"]) {
      const result = op([command, file]);
      expect(result.status, command).toBe(1);
      expect(result.stderr).toContain(
        '/plugins/net/interfaces/0: bridge "opbr0" lists itself as a port',
      );
      expect(result.stderr).toContain(
        '/plugins/net/interfaces/1: address 198.18.4.1 is on both "opbr0" and "opbr1"',
      );
    }
  });

  it("gives malformed JSON's line and column", () => {
    const file = join(sandbox.dir, "broken.json");
    writeFileSync(file, '{\n  "version": 1,\n  "plugins": {,}\n}\n');
    const result = op(["plan", file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/broken\.json:3:15: malformed JSON/);
  });

  it("writes all of an output larger than a pipe holds to a reader that comes late", () => {
    // op schema is ~80 KB; a pipe holds 64 KiB: the rest waits for the reader, not for nothing.
    const late = spawnSync("sh", ["-c", `"${opBinary}" schema | (sleep 1; cat)`], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    expect(late.status, late.stderr).toBe(0);
    expect(late.stdout.length).toBeGreaterThan(65_536);
    expect(JSON.parse(late.stdout).title).toBe("StateFile");
  });

  it("treats a bad command line as a usage error (64)", () => {
    expect(op(["apply"]).status).toBe(64);
    expect(op(["frobnicate"]).status).toBe(64);
    expect(op(["apply", "x.json", "--lock-timeout", "soon"]).status).toBe(64);
    const unknown = op(["query", "--plugin", "bogus"]);
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain("op knows: ");
  });
});

describe("op on nftables in a namespace", () => {
  it("plans without changing anything, applies, verifies and records", () => {
    const file = stateFile("s.json", [table(["tcp dport {22,80} accept"])]);
    const plan = op(["plan", file]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("+ create nftables table inet/optest");
    expect(plan.stdout).toContain("Plan: 1 to create, 0 to modify, 0 to delete.");
    expect(plan.stdout).not.toContain("\u001b["); // no colour when not on a terminal
    expect(ruleset()).toBe("");

    const apply = op(["apply", file]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(apply.stdout).toContain("verified: the host matches the file");
    expect(ruleset()).toContain("tcp dport { 22, 80 } accept");

    // The run's pre-image is named first, by its hash, then its intent and outcome.
    const all = allRecords();
    expect(all.map((r) => `${r.plugin} ${r.target} ${r.status}`)).toEqual([
      "op pre-image ok",
      "nftables inet/optest intent",
      "nftables inet/optest ok",
    ]);
    expect((all[0]?.changes as { preimage?: string } | undefined)?.preimage).toMatch(
      /^[0-9a-f]{64}$/,
    );
    const records = ledgerRecords();
    expect(records.map((r) => r.status)).toEqual(["intent", "ok"]);
    expect(records[0]).toMatchObject({
      plugin: "nftables",
      action: "create",
      target: "inet/optest",
    });

    // Converged: --check exits 0, a re-apply changes nothing and writes no records.
    expect(op(["apply", file, "--check"]).status).toBe(0);
    const again = op(["apply", file]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain("No changes");
    expect(ledgerRecords()).toHaveLength(2);

    const query = op(["query", "--plugin", "nftables", "--json"]);
    expect(query.status).toBe(0);
    expect(JSON.stringify(JSON.parse(query.stdout))).toContain("optest");
    // --plugin is repeatable: each one named is read (a second one used to replace the first).
    const two = op(["query", "--plugin", "nftables", "--plugin", "sysctl", "--json"]);
    expect(two.status, two.stderr).toBe(0);
    expect(Object.keys(JSON.parse(two.stdout)).sort()).toEqual([
      "format_version",
      "nftables",
      "sysctl",
    ]);
    expect(op(["ledger", "verify"]).status).toBe(0);
  });

  it("creates no ledger or key while nothing changes, then opens the existing one", () => {
    // apply opens an existing ledger while it queries the host; it must never create one then.
    const converged = stateFile("none.json", []);
    const idle = op(["apply", converged]);
    expect(idle.status, idle.stderr).toBe(0);
    expect(idle.stdout).toContain("No changes");
    expect(existsSync(join(sandbox.dir, "ledger"))).toBe(false);
    expect(existsSync(join(sandbox.dir, "keys", "ledger.key"))).toBe(false);

    const file = stateFile("s.json", [table(["tcp dport 22 accept"])]);
    expect(op(["apply", file]).status).toBe(0);
    expect(op(["apply", file]).stdout).toContain("No changes");
    const changed = stateFile("s2.json", [table(["tcp dport 23 accept"])]);
    const apply = op(["apply", changed]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(ledgerRecords().map((r) => r.status)).toEqual(["intent", "ok", "intent", "ok"]);
    expect(op(["ledger", "verify"]).status).toBe(0);
  });

  it("finishes an apply whose reader goes away (op apply | head -1)", async () => {
    const file = stateFile("s.json", [table(["tcp dport 22 accept"])]);
    const child = spawn("ip", ["netns", "exec", netns.name, opBinary, "apply", file], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...sandbox.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // Our end of its stdout closes before op writes the plan: every write it makes fails.
    child.stdout.destroy();
    const status = await new Promise((resolve) => child.on("close", resolve));
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(ruleset()).toContain("tcp dport 22 accept");
    expect(ledgerRecords().map((r) => r.status)).toEqual(["intent", "ok"]);
  });

  it("prints its phases with their times under OP_TRACE=1, and nothing more without", () => {
    const file = stateFile("traced.json", [table(["tcp dport 22 accept"])]);
    const quiet = op(["plan", file]);
    const traced = sandbox.op(["plan", file], { netns: netns.name, env: { OP_TRACE: "1" } });
    expect(traced.status, traced.stderr).toBe(0);
    expect(traced.stdout).toBe(quiet.stdout);
    expect(quiet.stderr).toBe("");
    const events = traced.stderr
      .split("\n")
      .filter(Boolean)
      .map((line) => /^op-trace (\d+\.\d) ms (.*)$/.exec(line));
    expect(events.every(Boolean), traced.stderr).toBe(true);
    const names = events.map((match) => match?.[2]);
    expect(names).toEqual(
      expect.arrayContaining([
        "cli start",
        "nftables query start",
        "spawn nft -j -s list",
        "nftables query end",
        "diffed: 1 actions",
      ]),
    );
    const times = events.map((match) => Number(match?.[1]));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("detects a rule added by hand (--check exits 2) and apply removes it", () => {
    const file = stateFile("s.json", [table(["tcp dport 22 accept"])]);
    expect(op(["apply", file]).status).toBe(0);
    netns.run("nft", ["add", "rule", "inet", "optest", "input", "tcp", "dport", "9999", "accept"]);

    const check = op(["apply", file, "--check"]);
    expect(check.status).toBe(2);
    expect(check.stdout).toContain("~ modify nftables table inet/optest");
    expect(check.stdout).toContain("tcp dport 9999 accept");

    const json = JSON.parse(op(["apply", file, "--check", "--json"]).stdout);
    expect(json.drift).toBe(true);
    expect(json.actions).toEqual([
      expect.objectContaining({
        action: "modify",
        kind: "modify",
        resource: "table",
        id: "inet/optest",
        replace: false,
        restart: false,
      }),
    ]);
    expect(json.actions[0].changes).toContainEqual(
      expect.objectContaining({ field: "chain input/rules" }),
    );

    const apply = op(["apply", file]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(ruleset()).not.toContain("9999");
    expect(op(["apply", file, "--check"]).status).toBe(0);
    // Each check that found the drift recorded it (issue 16); the clean one after, nothing.
    expect(
      ledgerRecords()
        .filter((r) => r.action === "modify")
        .map((r) => r.status),
    ).toEqual(["drift", "drift", "intent", "ok"]);
  });

  it("rejects a broken rule before touching the host or the ledger", () => {
    const good = stateFile("good.json", [table(["tcp dport 22 accept"])]);
    expect(op(["apply", good]).status).toBe(0);
    const before = ruleset();
    const recordsBefore = ledgerRecords().length;

    const bad = stateFile("bad.json", [table(["tcp dport 22 accept", "tcp dport 23 acept"])]);
    const apply = op(["apply", bad]);
    expect(apply.status).toBe(1);
    expect(apply.stderr).toContain("inet/optest");
    expect(apply.stderr).toContain("input");
    expect(apply.stderr).toContain("tcp dport 23 acept");
    expect(ruleset()).toBe(before);
    expect(ledgerRecords()).toHaveLength(recordsBefore);
  });

  it("deletes a table marked ensure: absent", () => {
    expect(op(["apply", stateFile("s.json", [table(["accept"])])]).status).toBe(0);
    const absent = stateFile("absent.json", [{ family: "inet", name: "optest", ensure: "absent" }]);
    const apply = op(["apply", absent]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(apply.stdout).toContain("- delete nftables table inet/optest");
    expect(ruleset()).toBe("");
    expect(op(["apply", absent, "--check"]).status).toBe(0);
  });

  it("refuses to replace a table op did not create unless the file adopts it", () => {
    netns.run(
      "nft",
      ["-f", "-"],
      "table inet optest {\n chain input {\n  tcp dport 7777 accept\n }\n}\n",
    );
    const before = ruleset();
    const file = stateFile("s.json", [table(["tcp dport 22 accept"])]);
    const refused = op(["apply", file]);
    expect(refused.status).toBe(1);
    // Refused when planned, at the table's entry: nothing reaches the host or the ledger.
    expect(refused.stderr).toContain(
      "/plugins/nftables/tables/0: nftables table inet/optest exists and op did not create it, so op will not take it over unless it is adopted",
    );
    expect(refused.stderr).toContain('"adopt": true');
    expect(refused.stderr).toContain("--adopt");
    expect(ruleset()).toBe(before);

    const adopted = op([
      "apply",
      stateFile("adopt.json", [table(["tcp dport 22 accept"], { adopt: true })]),
    ]);
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain("~ adopt nftables table inet/optest  (made outside op");
    // The refused run recorded nothing: the adopt's records are the ledger's first.
    expect(ledgerRecords().map((r) => [r.action, r.status])).toEqual([
      ["adopt", "intent"],
      ["adopt", "ok"],
    ]);
    expect(ruleset()).not.toContain("7777");
    // Now op's (it carries op's comment), the table is modified without adopt.
    netns.run("nft", ["add", "rule", "inet", "optest", "input", "tcp", "dport", "9999", "accept"]);
    expect(op(["apply", file]).status).toBe(0);
    expect(ruleset()).not.toContain("9999");
  });

  it("reports an action the kernel refuses at apply time: a failed record, exit 1, one JSON document", () => {
    // The throw-away namespace has the interface (prepare creates it there); this one does not.
    const file = stateFile("s.json", [table(['iif "opt-missing0" accept'])]);
    const result = op(["apply", file, "--json"]);
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.outcomes).toEqual([
      expect.objectContaining({ resource: "table", id: "inet/optest", status: "failed" }),
    ]);
    expect(report.error.code).toBe("apply-failed");
    // Each failed action is a detail naming it, with why it failed.
    expect(report.error.details).toEqual([
      {
        path: "create nftables table inet/optest",
        message: expect.stringContaining("opt-missing0"),
      },
    ]);
    expect(report.run).toMatch(/^[0-9a-f-]{36}$/);
    expect(report.ledger_head).toMatch(/^[0-9a-f]{64}$/);
    expect(report.converged).toBe(false);
    expect(ledgerRecords().map((r) => r.status)).toEqual(["intent", "failed"]);
    expect(ruleset()).toBe("");
  });

  it("shows what it can when a part of the host is missing, and fails when asked for that part", () => {
    const env = { OP_INCUS_SOCKET: join(sandbox.dir, "no-incus.socket") };
    const all = sandbox.op(["query", "--json"], { netns: netns.name, env });
    expect(all.status, all.stderr).toBe(0);
    const data = JSON.parse(all.stdout);
    expect(data.lxc.unavailable.code).toBe("daemon-unavailable");
    expect(data.nftables.tables).toEqual([]);
    const lxc = sandbox.op(["query", "--plugin", "lxc"], { netns: netns.name, env });
    expect(lxc.status).toBe(1);
    expect(lxc.stderr).toContain("[daemon-unavailable] (lxc query)");
  });

  it("--plugin applies only the plugins named, after checking the whole file", () => {
    // Incus is absent here: a run that read the lxc section would fail on it.
    const env = { OP_INCUS_SOCKET: join(sandbox.dir, "no-incus.socket") };
    const bridge = {
      name: "optestbr0",
      type: "linux-bridge",
      ipv4: { addresses: ["198.18.9.1/24"] },
    };
    const plugins = {
      net: { interfaces: [bridge] },
      lxc: { containers: [{ id: "901", image: "op-test/busybox", bridge: "optestbr0" }] },
      nftables: { tables: [table(["accept"])] },
    };
    const file = join(sandbox.dir, "scoped.json");
    writeFileSync(file, JSON.stringify({ version: 1, plugins }));
    const scoped = (args: string[]) => sandbox.op(args, { netns: netns.name, env });

    const plan = scoped(["plan", file, "--plugin", "nftables", "--json"]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout).actions.map((a: { plugin: string }) => a.plugin)).toEqual([
      "nftables",
    ]);
    const applied = scoped(["apply", file, "--plugin", "network"]);
    expect(applied.status, applied.stderr).toBe(0);
    expect(netns.run("ip", ["-o", "addr", "show", "dev", "optestbr0"])).toContain("198.18.9.1/24");
    expect(ruleset()).not.toContain("optest");
    expect(
      scoped(["apply", file, "--check", "--plugin", "net", "--plugin", "network"]).status,
    ).toBe(0);

    // The sections left out are still checked: a wrong one refuses the run.
    const wrong = { ...plugins, lxc: { containers: [{ id: "901", imag: "x" }] } };
    writeFileSync(file, JSON.stringify({ version: 1, plugins: wrong }));
    const refused = scoped(["apply", file, "--plugin", "network"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`/plugins/lxc/containers/0: unknown field "imag"`);
    const unknown = scoped(["plan", file, "--plugin", "firewall"]);
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain("--plugin firewall: unknown plugin");
  });

  it("never touches a table the file does not list", () => {
    netns.run("nft", ["-f", "-"], "table ip theirs {\n chain c {\n  counter\n }\n}\n");
    const before = ruleset();
    const file = stateFile("s.json", [table(["accept"])]);
    const plan = op(["plan", file]);
    expect(plan.stdout).not.toContain("theirs");
    expect(op(["apply", file]).status).toBe(0);
    expect(ruleset()).toContain(before.trim().split("\n")[0] ?? "table ip theirs");
    expect(netns.run("nft", ["list", "table", "ip", "theirs"])).toBe(before);
  });

  it("signs a checkpoint, and verify catches a tampered ledger", async () => {
    const file = stateFile("s.json", [table(["accept"])]);
    expect(op(["apply", file]).status).toBe(0);
    const checkpoint = op(["ledger", "checkpoint"]);
    expect(checkpoint.status).toBe(0);
    const saved = join(sandbox.dir, "trusted.checkpoint");
    writeFileSync(saved, checkpoint.stdout);
    expect(op(["ledger", "verify", "--trusted", saved]).status).toBe(0);

    expect(
      op([
        "apply",
        stateFile("absent.json", [{ family: "inet", name: "optest", ensure: "absent" }]),
      ]).status,
    ).toBe(0);
    expect(op(["ledger", "verify", "--trusted", saved]).status).toBe(0);
    expect(JSON.parse(op(["ledger", "show", "1"]).stdout)).toMatchObject({
      seq: 1,
      plugin: "op",
      target: "pre-image",
      status: "ok",
    });
    expect(JSON.parse(op(["ledger", "show", "2"]).stdout)).toMatchObject({
      seq: 2,
      status: "intent",
    });
    expect(op(["ledger", "show", "99"]).status).toBe(1);
    // A header line, then each record, each checkpoint after the record it covers.
    const exported = op(["ledger", "export"])
      .stdout.trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(exported[0]).toMatchObject({ export: "op ledger" });
    expect(exported.filter((line) => "seq" in line)).toHaveLength(6);
    expect(exported.filter((line) => "checkpoint" in line).map((line) => line.size)).toEqual([
      3, 6,
    ]);

    // One byte of record 3's body changed behind op's back.
    await withRawDb(sandbox.env.OP_LEDGER as string, async (db) => {
      const value = await db.get(recordKey(3));
      if (value === undefined) throw new Error("record 3 missing");
      const at = value.length - 2;
      value[at] = (value[at] ?? 0) ^ 0x01;
      await db.put(recordKey(3), value);
    });
    const verify = op(["ledger", "verify"]);
    expect(verify.status).toBe(3);
    expect(verify.stdout).toMatch(/ledger BAD: record 3\b/);
  });
});

describe("the host lock", () => {
  let holder: ReturnType<typeof spawn> | undefined;
  afterEach(() => {
    holder?.kill();
  });

  it("refuses a second apply at once, naming the holder's pid", () => {
    // A real holder: util-linux flock keeps the lock (flock(2)) while its sleep runs.
    const lockFile = sandbox.env.OP_LOCK as string;
    holder = spawn("flock", ["-o", lockFile, "sleep", "60"]);
    while (spawnSync("flock", ["-n", lockFile, "true"]).status === 0) {}
    writeFileSync(lockFile, `${holder.pid}\n`);
    const result = op(["apply", stateFile("s.json", [table(["accept"])])]);
    expect(result.status).toBe(75);
    expect(result.stderr).toContain(`pid ${holder.pid}`);
    expect(ruleset()).toBe("");
    // --check takes the lock too (it records drift, and a read taken while another apply
    // changes the host would be a lie): refused the same way, recording nothing.
    const check = op(["apply", stateFile("s.json", [table(["accept"])]), "--check"]);
    expect(check.status).toBe(75);
    expect(check.stderr).toContain(`pid ${holder.pid}`);
  });
});
