import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import {
  carriesOwnerMark,
  definitionScript,
  deleteScript,
  describeProblem,
  locateErrors,
  replaceScript,
} from "./script.js";
import type { NftTableSpec } from "./types.js";

const spec: NftTableSpec = {
  family: "inet",
  name: "op_demo",
  sets: [
    {
      name: "lab",
      type: "ipv4_addr",
      flags: ["interval"],
      autoMerge: true,
      comment: "lab nets",
      elements: ["198.18.0.0/24", "198.18.9.9"],
    },
  ],
  maps: [
    {
      name: "v",
      type: "ipv4_addr",
      map: "verdict",
      elements: [
        ["198.18.1.1", "drop"],
        ["198.18.1.2", "jump other"],
      ],
    },
  ],
  chains: [
    {
      name: "input",
      type: "filter",
      hook: "input",
      priority: "filter",
      policy: "drop",
      comment: "in",
      rules: ["tcp dport {22,80} accept", "ip saddr @lab accept"],
    },
    { name: "other", rules: [] },
  ],
};

describe("script generation", () => {
  it("writes each block and statement on its own line", () => {
    expect(definitionScript([spec]).text).toBe(
      [
        "table inet op_demo {",
        '  comment "managed by op"',
        "  set lab {",
        "    type ipv4_addr",
        "    flags interval",
        "    auto-merge",
        '    comment "lab nets"',
        "    elements = { 198.18.0.0/24, 198.18.9.9 }",
        "  }",
        "  map v {",
        "    type ipv4_addr : verdict",
        "    elements = { 198.18.1.1 : drop, 198.18.1.2 : jump other }",
        "  }",
        "  chain input {",
        '    comment "in"',
        "    type filter hook input priority filter",
        "    policy drop",
        "    tcp dport {22,80} accept",
        "    ip saddr @lab accept",
        "  }",
        "  chain other {",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("replaces a table in one transaction that works whether or not it exists", () => {
    const lines = replaceScript(spec).text.split("\n");
    expect(lines.slice(0, 3)).toEqual([
      "add table inet op_demo",
      "delete table inet op_demo",
      "table inet op_demo {",
    ]);
    expect(deleteScript({ family: "ip", name: "op_nat" }).text).toBe(
      "add table ip op_nat\ndelete table ip op_nat\n",
    );
  });

  it("writes typeof sets and device-bound chains", () => {
    const text = definitionScript([
      {
        family: "netdev",
        name: "op_in",
        sets: [{ name: "s", type: "typeof ip saddr" }],
        chains: [{ name: "c", type: "filter", hook: "ingress", device: "opt0", priority: -500 }],
      },
    ]).text;
    expect(text).toContain("\n    typeof ip saddr\n");
    expect(text).toContain('\n    type filter hook ingress device "opt0" priority -500\n');
  });

  it("refuses to write a table that would inject commands", () => {
    const evil = {
      family: "inet",
      name: "t",
      chains: [{ name: "c", rules: ["accept\ndelete table inet incus"] }],
    } as NftTableSpec;
    expect(() => replaceScript(evil)).toThrow(OpError);
    expect(() => deleteScript({ family: "inet", name: "x\nflush ruleset" })).toThrow(OpError);
    expect(() =>
      definitionScript([
        { ...spec, chains: [{ name: "c", policy: "drop; flush ruleset" as "drop" }] },
      ]),
    ).toThrow(/cannot be written/);
  });
});

describe("locateErrors", () => {
  const script = replaceScript(spec);

  it("maps a line to its table, chain and rule", () => {
    const stderr =
      "/dev/stdin:20:20-25: Error: syntax error, unexpected newline\n    tcp dport {22,80} accept\n   ^^^^^\n";
    const [problem] = locateErrors(stderr, script);
    expect(problem?.line).toBe(20);
    expect(describeProblem(problem ?? { message: "" })).toBe(
      'table inet/op_demo, chain input, rule "tcp dport {22,80} accept": syntax error, unexpected newline',
    );
  });

  it("maps a column on an element line to the element", () => {
    // Line 10 is the set's elements; column 35 falls in "198.18.9.9".
    const line = script.text.split("\n")[9] ?? "";
    expect(line).toBe("    elements = { 198.18.0.0/24, 198.18.9.9 }");
    const [problem] = locateErrors(
      "/dev/stdin:10:35-44: Error: Could not resolve hostname\n",
      script,
    );
    expect(describeProblem(problem ?? { message: "" })).toBe(
      'table inet/op_demo, set lab, element "198.18.9.9": Could not resolve hostname',
    );
  });

  it("keeps nft's message when it names no line", () => {
    expect(
      locateErrors("Error: Could not process rule: Operation not supported\n", script),
    ).toEqual([{ message: "Could not process rule: Operation not supported" }]);
    expect(locateErrors("", script)).toEqual([{ message: "nft failed without a message" }]);
  });
});

describe("carriesOwnerMark (whether a table is op's, from `nft list table`)", () => {
  const listing = (...body: string[]) => ["table inet t {", ...body, "}", ""].join("\n");

  it("sees op's comment on the table itself, after its flags", () => {
    expect(carriesOwnerMark(listing('\tcomment "managed by op"', "", "\tchain c {", "\t}"))).toBe(
      true,
    );
    expect(carriesOwnerMark(listing("\tflags dormant", '\tcomment "managed by op"'))).toBe(true);
  });

  it("does not take the mark of a rule, chain or set for the table's", () => {
    const foreign = listing(
      "\tset s {",
      "\t\ttype ipv4_addr",
      '\t\tcomment "managed by op"',
      "\t}",
      "",
      "\tchain c {",
      '\t\tcomment "managed by op"',
      '\t\ttcp dport 22 accept comment "managed by op"',
      "\t}",
    );
    expect(carriesOwnerMark(foreign)).toBe(false);
    expect(carriesOwnerMark(listing('\tcomment "managed by op, not"'))).toBe(false);
    expect(carriesOwnerMark(listing('\tcomment "another tool"'))).toBe(false);
    expect(carriesOwnerMark("")).toBe(false);
  });
});
