/**
 * The machine contract (docs/json-output.md): every `--json` document the built op prints, run
 * for real against nft and ip in a network namespace of this test's own (prefix opct-), starts
 * with `format_version` and is valid against its schema under schemas/output/ (ajv).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, type CliSandbox, createCliSandbox, repoRoot } from "./support/cli.js";
import { createNetns, type TestNetns } from "./support/netns.js";

const outputDir = join(repoRoot, "schemas", "output");
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
for (const file of readdirSync(outputDir).filter((f) => f.endsWith(".schema.json")))
  ajv.addSchema(JSON.parse(readFileSync(join(outputDir, file), "utf8")));

function schema(kind: string): ValidateFunction {
  const validate = ajv.getSchema(`https://op.invalid/schemas/output/${kind}.schema.json`);
  if (validate === undefined) throw new Error(`schemas/output/${kind}.schema.json is missing`);
  return validate;
}

let sandbox: CliSandbox;
let netns: TestNetns;
const op = (args: string[]) => sandbox.op(args, { netns: netns.name });

/** The one JSON document a run printed, checked against `kind`'s schema; `format_version` first. */
function documentOf(run: CliResult, kind: string): Record<string, unknown> {
  const document = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(Object.keys(document)[0], run.stdout).toBe("format_version");
  expect(document.format_version).toBe("1.0");
  const validate = schema(kind);
  expect(validate(document), JSON.stringify(validate.errors)).toBe(true);
  return document;
}

function stateFile(name: string, plugins: Record<string, unknown>): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins }, null, 2));
  return path;
}

const table = (rules: string[]) => ({
  tables: [
    {
      family: "inet",
      name: "opct",
      chains: [{ name: "input", type: "filter", hook: "input", priority: 0, rules }],
    },
  ],
});

beforeAll(() => {
  sandbox = createCliSandbox();
  netns = createNetns("json", "opct");
});
afterAll(() => {
  netns?.remove();
  sandbox?.cleanup();
});

interface ActionDoc {
  action: string;
  kind: string;
  resource: string;
  id: string;
  before: unknown;
  after: unknown;
  changes: { field: string; before: unknown; after: unknown }[];
  replace: boolean;
  restart: boolean;
}

describe("op's JSON documents", () => {
  it("has a schema for each kind of document, each compiling in ajv's strict mode", () => {
    const kinds = readdirSync(outputDir)
      .filter((f) => f.endsWith(".schema.json") && f !== "common.schema.json")
      .map((f) => f.replace(".schema.json", ""));
    expect(kinds).toEqual(expect.arrayContaining(["plan", "apply", "error", "query", "status"]));
    for (const kind of kinds) expect(typeof schema(kind)).toBe("function");
  });

  it("plan and apply: actions with before, after, per-field changes, replace and restart; the run and the ledger head", () => {
    const file = stateFile("s.json", { nftables: table(["tcp dport 22 accept"]) });
    const plan = op(["plan", file, "--json"]);
    expect(plan.status, plan.stderr).toBe(0);
    const planned = documentOf(plan, "plan");
    const [create] = planned.actions as ActionDoc[];
    expect(create).toMatchObject({
      action: "create",
      kind: "create",
      resource: "table",
      id: "inet/opct",
      before: null,
      changes: [],
      replace: false,
      restart: false,
    });
    expect(create?.after).toMatchObject({ family: "inet", name: "opct" });

    const apply = op(["apply", file, "--json"]);
    expect(apply.status, apply.stderr).toBe(0);
    const applied = documentOf(apply, "apply");
    expect(applied.run).toMatch(/^[0-9a-f-]{36}$/);
    expect(applied.converged).toBe(true);
    expect(applied.actions).toEqual(planned.actions);
    const head = documentOf(op(["status", "--json"]), "status").ledger as { hash: string };
    expect(applied.ledger_head).toBe(head.hash);

    // Nothing to change: no run, the head as it was.
    const again = documentOf(op(["apply", file, "--json"]), "apply");
    expect(again).toMatchObject({ run: null, ledger_head: head.hash, actions: [] });

    // An undo is an apply too: the same document, its own run.
    const undo = op(["rollback", applied.run as string, "--json"]);
    expect(undo.status, undo.stderr).toBe(0);
    const undone = documentOf(undo, "apply");
    expect(undone.run).not.toBe(applied.run);
    expect(undone.actions).toEqual([
      expect.objectContaining({ action: "delete", id: "inet/opct", after: null }),
    ]);
    expect(op(["apply", file]).status).toBe(0);

    // A modify names each field with its value before and after.
    const changed = stateFile("changed.json", { nftables: table(["tcp dport 23 accept"]) });
    const modify = documentOf(op(["plan", changed, "--json"]), "plan");
    // apply --check answers with a plan document, drift and the run that recorded it added.
    const check = op(["apply", changed, "--check", "--json"]);
    expect(check.status).toBe(2);
    const drift = documentOf(check, "plan");
    expect(drift).toMatchObject({ drift: true, actions: modify.actions });
    expect(drift.run).toMatch(/^[0-9a-f-]{36}$/);
    const [action] = modify.actions as ActionDoc[];
    expect(action).toMatchObject({ action: "modify", replace: false, restart: false });
    expect(action?.before).toMatchObject({ name: "opct" });
    // nftables tells a rule's change as the old rule removed and the new one added.
    expect(action?.changes).toEqual([
      { field: "chain input/rules", before: "tcp dport 22 accept", after: null },
      { field: "chain input/rules", before: null, after: "tcp dport 23 accept" },
    ]);
  });

  it("a link whose type changes is replaced: a delete and a create, both marked replace", () => {
    const bridge = stateFile("br.json", {
      network: { interfaces: [{ name: "opctl0", type: "linux-bridge" }] },
    });
    expect(op(["apply", bridge]).status).toBe(0);
    const veth = stateFile("veth.json", {
      network: { interfaces: [{ name: "opctl0", type: "veth", veth: { peer: "opctl0p" } }] },
    });
    const plan = documentOf(op(["plan", veth, "--json"]), "plan");
    const link = (plan.actions as ActionDoc[]).filter((a) => a.id === "opctl0");
    expect(link.map((a) => [a.action, a.replace])).toEqual([
      ["delete", true],
      ["create", true],
    ]);
    expect(link[0]?.after).toBeNull();
    expect(link[1]?.before).toBeNull();
  });

  it("the reading commands: query, status, validate, doctor, ledger verify, show, log, checkpoint", () => {
    const file = stateFile("read.json", { nftables: table([]) });
    expect(op(["apply", file]).status).toBe(0);
    const query = documentOf(op(["query", "--plugin", "nftables", "--json"]), "query");
    expect(query.nftables).toBeDefined();
    documentOf(op(["validate", file, "--json"]), "validate");
    documentOf(op(["doctor", "--json"]), "doctor");
    expect(documentOf(op(["ledger", "verify", "--json"]), "ledger-verify").ok).toBe(true);
    expect(documentOf(op(["ledger", "show", "1", "--json"]), "ledger-record").seq).toBe(1);
    documentOf(op(["ledger", "checkpoint", "--json"]), "ledger-checkpoint");
    const prune = op(["ledger", "prune-images", "--keep", "1", "--dry-run", "--json"]);
    expect(prune.status, prune.stderr).toBe(0);
    expect(documentOf(prune, "ledger-prune-images").dryRun).toBe(true);
    const confirm = op(["confirm", "--json"]);
    expect(confirm.status).toBe(1);
    expect(documentOf(confirm, "confirm").pending).toBeNull();
    const log = op(["ledger", "log", "--json"]).stdout.split("\n").filter(Boolean);
    expect(log.length).toBeGreaterThan(1);
    for (const line of log) {
      const record = JSON.parse(line);
      expect(Object.keys(record)[0]).toBe("format_version");
      expect(schema("ledger-record")(record)).toBe(true);
    }
  });

  it("errors: one shape, details as {path, message} objects, usage errors included", () => {
    const bad = stateFile("bad.json", {
      nftables: { tables: [{ family: "inet6", name: "opct_bad" }] },
    });
    const invalid = op(["plan", bad, "--json"]);
    expect(invalid.status).toBe(1);
    const { error } = documentOf(invalid, "error") as {
      error: { code: string; details: { path: string; message: string }[] };
    };
    expect(error.code).toBe("invalid-file");
    expect(error.details).toContainEqual(
      expect.objectContaining({ path: "/plugins/nftables/tables/0/family" }),
    );

    for (const args of [
      ["plan", "--json"],
      ["plan", bad, "--json", "--no-such-option"],
      ["--json", "frobnicate"],
      ["--json"],
    ]) {
      const usage = op(args);
      expect(usage.status, args.join(" ")).toBe(64);
      expect(usage.stderr, args.join(" ")).toBe("");
      const doc = documentOf(usage, "error") as { error: { code: string; message: string } };
      expect(doc.error.code).toBe("usage");
      expect(doc.error.message).not.toMatch(/^error:|outputHelp/);
    }
    // Without --json, commander's own line on stderr, as before.
    const text = op(["plan", "--no-such-option", bad]);
    expect(text.status).toBe(64);
    expect(text.stdout).toBe("");
    expect(text.stderr).toContain("unknown option '--no-such-option'");
  });

  it("a --json after -- is the command's, not op's: op's error stays text", () => {
    const run = op(["exec", "opct-none", "--", "sh", "--json"]);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^op: error \[/);
  });
});

describe("op plan --detailed-exitcode", () => {
  it("exits 0 without changes, 2 with changes, 1 on an error", () => {
    const file = stateFile("exit.json", {
      nftables: { tables: [{ family: "inet", name: "opct_exit" }] },
    });
    const changes = op(["plan", file, "--detailed-exitcode"]);
    expect(changes.status, changes.stderr).toBe(2);
    expect(changes.stdout).toContain("+ create nftables table inet/opct_exit");
    expect(op(["plan", file]).status).toBe(0);
    expect(op(["apply", file]).status).toBe(0);
    expect(op(["plan", file, "--detailed-exitcode"]).status).toBe(0);
    const bad = stateFile("exit-bad.json", { nftables: { tables: [{ family: "x", name: "y" }] } });
    expect(op(["plan", bad, "--detailed-exitcode"]).status).toBe(1);
  });
});

describe("plan files", () => {
  const rules = (port: number) => ({
    nftables: {
      tables: [
        {
          family: "inet",
          name: "opct_plan",
          chains: [
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: 0,
              rules: [`tcp dport ${port} accept`],
            },
          ],
        },
      ],
    },
  });
  const ruleset = () => netns.run("nft", ["list", "table", "inet", "opct_plan"]);

  it("applies exactly the saved plan on an unchanged host, and refuses it once the host moved", () => {
    const first = stateFile("plan-a.json", rules(22));
    expect(op(["apply", first]).status).toBe(0);

    const second = stateFile("plan-b.json", rules(23));
    const planFile = join(sandbox.dir, "b.plan");
    const made = op(["plan", second, "--out", planFile, "--json"]);
    expect(made.status, made.stderr).toBe(0);
    const planned = documentOf(made, "plan");
    const saved = JSON.parse(readFileSync(planFile, "utf8"));
    expect(Object.keys(saved).slice(0, 2)).toEqual(["format_version", "kind"]);
    expect(saved).toMatchObject({ kind: "op-plan", state_file: second, actions: planned.actions });
    expect(saved.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(schema("plan-file")(saved), JSON.stringify(schema("plan-file").errors)).toBe(true);

    // The state file changing after the plan does not change what the plan applies.
    writeFileSync(second, JSON.stringify({ version: 1, plugins: rules(80) }));
    const applied = op(["apply", planFile, "--json"]);
    expect(applied.status, applied.stderr).toBe(0);
    expect(documentOf(applied, "apply").actions).toEqual(planned.actions);
    expect(ruleset()).toContain("tcp dport 23 accept");
    expect(ruleset()).not.toContain("dport 80");

    // Planned against 23; a rule added by hand since: refused, naming the resource and field.
    const third = stateFile("plan-c.json", rules(24));
    const stale = join(sandbox.dir, "c.plan");
    expect(op(["plan", third, "--out", stale]).status).toBe(0);
    netns.run("nft", [
      "add",
      "rule",
      "inet",
      "opct_plan",
      "input",
      "tcp",
      "dport",
      "9999",
      "accept",
    ]);
    const before = ruleset();
    const records = op(["ledger", "log", "--json"]).stdout;
    const refused = op(["apply", stale]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("[plan-stale]");
    expect(refused.stderr).toContain("the host changed since the plan was made");
    expect(refused.stderr).toContain(
      "nftables table inet/opct_plan: modify: moved: before.chains.0.rules",
    );
    expect(ruleset()).toBe(before);
    expect(op(["ledger", "log", "--json"]).stdout).toBe(records);
    const json = op(["apply", stale, "--json"]);
    expect(json.status).toBe(1);
    const { error } = documentOf(json, "error") as {
      error: { code: string; details: { path: string; message: string }[] };
    };
    expect(error.code).toBe("plan-stale");
    expect(error.details).toEqual([
      {
        path: "nftables table inet/opct_plan",
        message: expect.stringContaining("before.chains.0.rules"),
      },
    ]);
  });

  it("never writes the plan or the events over the state file", () => {
    const file = stateFile("plan-self.json", rules(26));
    const text = readFileSync(file, "utf8");
    for (const args of [
      ["plan", file, "--out", file],
      ["plan", file, `--events=${file}`],
    ]) {
      const run = op(args);
      expect(run.status, args.join(" ")).toBe(64);
      expect(run.stderr).toContain("is the state file itself");
    }
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("refuses options that would change a plan, and --check of one", () => {
    const file = stateFile("plan-opts.json", rules(25));
    const planFile = join(sandbox.dir, "opts.plan");
    expect(op(["plan", file, "--out", planFile]).status).toBe(0);
    for (const flag of ["--check", "--adopt", "--allow-restart"]) {
      const run = op(["apply", planFile, flag]);
      expect(run.status, flag).toBe(64);
      expect(run.stderr).toContain(`is a plan file: ${flag} cannot change it`);
    }
  });
});

describe("--events", () => {
  interface Event {
    format_version: string;
    type: string;
    time: string;
    [field: string]: unknown;
  }
  const lines = (text: string) =>
    text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Event);

  it("streams an apply's progress as JSON lines to a file, the usual output unchanged", () => {
    const file = stateFile("events.json", {
      nftables: { tables: [{ family: "inet", name: "opct_ev" }] },
    });
    const eventsFile = join(sandbox.dir, "events.jsonl");
    const run = op(["apply", file, `--events=${eventsFile}`]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("verified: the host matches the file");
    const events = lines(readFileSync(eventsFile, "utf8"));
    expect(events.map((e) => e.type)).toEqual([
      "run_started",
      "plan",
      "action_started",
      "action_finished",
      "verify",
      "run_finished",
    ]);
    for (const event of events) {
      expect(Object.keys(event).slice(0, 3)).toEqual(["format_version", "type", "time"]);
      expect(schema("event")(event), JSON.stringify(schema("event").errors)).toBe(true);
      expect(Number.isNaN(Date.parse(event.time))).toBe(false);
    }
    expect(events[1]?.actions).toEqual([
      expect.objectContaining({ action: "create", id: "inet/opct_ev" }),
    ]);
    expect(events[3]).toMatchObject({ id: "inet/opct_ev", status: "ok" });
    expect(events[4]).toMatchObject({ converged: true, remaining: [] });
    const head = documentOf(op(["status", "--json"]), "status").ledger as { hash: string };
    expect(events[5]).toMatchObject({ converged: true, exit_code: 0, ledger_head: head.hash });
    expect(events[5]?.run).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("alone, streams to stdout instead of the usual output, and never takes the file after it", () => {
    const file = stateFile("events2.json", {
      nftables: { tables: [{ family: "inet", name: "opct_ev2" }] },
    });
    const plan = op(["plan", "--events", file]);
    expect(plan.status, plan.stderr).toBe(0);
    const planEvents = lines(plan.stdout);
    expect(planEvents.map((e) => e.type)).toEqual(["run_started", "plan", "run_finished"]);
    for (const event of planEvents) expect(schema("event")(event)).toBe(true);
    expect(planEvents[2]).toMatchObject({ run: null, converged: false, exit_code: 0 });
    expect(JSON.parse(readFileSync(file, "utf8")).version).toBe(1);

    const refused = op(["apply", "--events", "--json", file]);
    expect(refused.status).toBe(64);
    const bad = stateFile("events-bad.json", {
      nftables: { tables: [{ family: "x", name: "y" }] },
    });
    const failed = op(["apply", "--events", bad]);
    expect(failed.status).toBe(1);
    const [started, finished] = lines(failed.stdout);
    expect(started?.type).toBe("run_started");
    expect(finished).toMatchObject({
      type: "run_finished",
      run: null,
      exit_code: 1,
      error: { code: "invalid-file" },
    });
  });
});
