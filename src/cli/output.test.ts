import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import type { Action } from "../plugin.js";
import {
  errorJson,
  maxErrorDetails,
  maxErrorLineLength,
  renderError,
  renderOutcome,
  renderPlan,
  renderReport,
} from "./output.js";

// vitest's output is not a terminal, so styleText adds no colour: the text is compared as is.
describe("renderPlan", () => {
  it("shows a held action with why it is held, and counts it in the summary", () => {
    const held: Action = {
      kind: "modify",
      plugin: "lxc",
      resource: "container",
      id: "web",
      before: {},
      after: {},
      changes: [{ path: "config.raw.lxc", after: "x" }],
      reason: "add config.raw.lxc",
      held: "restart required for raw.lxc",
    };
    expect(renderPlan([held])).toBe(
      [
        "~ modify lxc container web  (add config.raw.lxc)",
        "    held: restart required for raw.lxc",
        "    + config.raw.lxc: x",
        "",
        "Plan: 0 to create, 1 to modify, 0 to delete. 1 held (not applied).",
        "",
      ].join("\n"),
    );
    expect(
      renderOutcome({
        action: held,
        outcome: { key: "k", status: "held", reason: "restart required for raw.lxc" },
      }),
    ).toBe("  held    modify lxc container web: restart required for raw.lxc");
  });

  it("says when there is nothing to do", () => {
    expect(renderPlan([])).toBe("No changes: the host matches the file.\n");
  });

  it("shows each action with its sign, reason and field changes, then a summary", () => {
    const actions: Action[] = [
      {
        kind: "create",
        plugin: "nftables",
        resource: "table",
        id: "inet/a",
        after: {},
        reason: "not on host",
      },
      {
        kind: "modify",
        plugin: "nftables",
        resource: "table",
        id: "inet/b",
        before: {},
        after: {},
        reason: "differs from file",
        changes: [
          { path: "chain input/policy", before: "accept", after: "drop" },
          { path: "chain input/rules", after: "tcp dport 22 accept" },
          { path: "chain input/rules", before: "tcp dport 9999 accept" },
        ],
      },
      {
        kind: "delete",
        plugin: "nftables",
        resource: "table",
        id: "inet/c",
        before: {},
        reason: "ensure: absent",
      },
    ];
    expect(renderPlan(actions)).toBe(
      [
        "+ create nftables table inet/a  (not on host)",
        "~ modify nftables table inet/b  (differs from file)",
        "    chain input/policy: accept → drop",
        "    + chain input/rules: tcp dport 22 accept",
        "    - chain input/rules: tcp dport 9999 accept",
        "- delete nftables table inet/c  (ensure: absent)",
        "",
        "Plan: 1 to create, 1 to modify, 1 to delete.",
        "",
      ].join("\n"),
    );
  });
});

describe("renderError", () => {
  it("prints an OpError as code, context, message, details and hint", () => {
    const error = new OpError("apply-failed", "nft rejected the rule", {
      hint: "fix the rule",
      details: ["chain input rule 2"],
      context: { plugin: "nftables", phase: "apply", id: "inet/a" },
    });
    expect(renderError(error)).toBe(
      "op: error [apply-failed] (nftables apply inet/a): nft rejected the rule\n  chain input rule 2\nhint: fix the rule\n",
    );
  });

  it("cuts a huge echoed value, escapes control characters and bounds the number of problems", () => {
    const name = "x".repeat(20 * 1024 * 1024);
    const details = [`/plugins/lxc/containers/0/name: "${name}" is not in the expected form`];
    for (let i = 0; i < maxErrorDetails + 5; i++) details.push(`/p/${i}: bad`);
    const error = new OpError("invalid-file", `f.json: bad "${name}"\u001b[2J\nforged\u202e`, {
      details,
      hint: "h",
      context: { id: `\u001b]0;${name}` },
    });
    const text = renderError(error);
    expect(text.length).toBeLessThan(200 * 1024);
    const lines = text.split("\n");
    expect(lines[0]).toContain('f.json: bad "xxx');
    expect(lines[0]).toContain("more characters)");
    expect(text).not.toContain("\u001b");
    expect(renderError(new OpError("invalid-file", "lxc\u202e\u200b"))).toContain(
      "lxc\\u202e\\u200b",
    );
    expect(text).not.toMatch(/^forged/m);
    expect(lines[1]).toMatch(
      /^ {2}\/plugins\/lxc\/containers\/0\/name: "x+… \(\d+ more characters\)$/,
    );
    expect(lines[1]?.length).toBeLessThan(maxErrorLineLength + 40);
    expect(text).toContain("  … and 6 more problems\n");
    const json = JSON.stringify(errorJson(error));
    expect(json.length).toBeLessThan(200 * 1024);
    expect(json).toContain("more characters");
  });

  it("prints anything else as a bug, with its stack", () => {
    const text = renderError(new TypeError("x is undefined"));
    expect(text).toContain("this is a bug in op");
    expect(text).toContain("TypeError: x is undefined");
    expect(text).toMatch(/at .*output\.test\.ts/);
  });
});

it("renders a report as aligned columns", () => {
  expect(
    renderReport("t", {
      columns: ["name", "state"],
      rows: [
        ["a", "up"],
        ["longer", "down"],
      ],
    }),
  ).toBe("t\nname    state\na       up\nlonger  down\n");
});

it("renders a report of several kinds as one titled table each", () => {
  expect(
    renderReport("lxc", [
      { columns: ["name"], rows: [["ct1"]] },
      { title: "profiles", columns: ["name", "op"], rows: [] },
    ]),
  ).toBe("lxc\nname\nct1\n\nlxc profiles\nname  op\n(none)\n");
});
