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

    // A modify names each field with its value before and after.
    const changed = stateFile("changed.json", { nftables: table(["tcp dport 23 accept"]) });
    const modify = documentOf(op(["plan", changed, "--json"]), "plan");
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
    ]) {
      const usage = op(args);
      expect(usage.status, args.join(" ")).toBe(64);
      expect(usage.stderr, args.join(" ")).toBe("");
      const doc = documentOf(usage, "error") as { error: { code: string; message: string } };
      expect(doc.error.code).toBe("usage");
      expect(doc.error.message).not.toMatch(/^error:/);
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
