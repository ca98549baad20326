import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { validate_nftables } from "../../src/generated/validators.js";
import { problemLine } from "../../src/problems.js";
import {
  elementProblem,
  ruleProblem,
  sectionProblems,
  tableProblems,
  validateSection,
} from "./validate.js";

const goodRules = [
  "tcp dport {22,80} accept",
  "tcp dport { 22, 80 } accept",
  'ip saddr @lab counter accept comment "a;b#c{ \\ }"',
  "ip saddr vmap { 198.18.0.1 : drop, 198.18.0.2 : jump other }",
  "meta l4proto tcp add @seen { ip saddr }",
  "ct state established,related accept",
  "iif { opt-a, opt-b } drop",
];

/** Each tries to end the rule early and add commands of its own to the generated script. */
const injections: Array<[string, RegExp]> = [
  ["accept\ntable inet pwned { }", /newline/],
  ["accept\r", /newline/],
  ["accept; flush ruleset", /`;`/],
  ["tcp dport { 22 # }\n", /newline|#/],
  ["tcp dport { 22 # }", /`#`/],
  ["accept }\ntable inet x {", /`}` without/],
  ["accept } table inet x { chain y {", /`}` without/],
  ["tcp dport { 22", /`\{` without/],
  ['accept comment "unclosed', /unclosed/],
  ["accept \\", /`\\`/],
  ['include "/etc/nftables.conf"', /include/],
  ["define x = 1", /define/],
  ["accept\u0000", /control/],
  ["{ { { { 1 } } } }", /deeper/],
  ["   ", /empty/],
];

describe("ruleProblem", () => {
  it.each(goodRules)("accepts %j", (rule) => {
    expect(ruleProblem(rule)).toBeUndefined();
  });

  it.each(injections)("refuses %j", (rule, why) => {
    expect(ruleProblem(rule)).toMatch(why);
  });

  it("agrees with the schema on every example", () => {
    for (const rule of [...goodRules, ...injections.map(([r]) => r)]) {
      const section = {
        tables: [{ family: "inet", name: "t", chains: [{ name: "c", rules: [rule] }] }],
      };
      expect({ rule, schema: validate_nftables(section) }).toEqual({
        rule,
        schema: ruleProblem(rule) === undefined,
      });
    }
  });
});

describe("elementProblem", () => {
  it.each([
    "198.18.0.0/16",
    "198.18.0.1-198.18.0.9",
    "198.18.0.1 . 22",
    '"eth0"',
    "jump other",
    "2001:db8::1",
  ])("accepts %j", (element) => {
    expect(elementProblem(element)).toBeUndefined();
  });

  it.each(["198.18.0.1, 198.18.0.2", "198.18.0.1 }", "{ 1 }", "a;b", "a\nb", "a # b", '"x'])(
    "refuses %j",
    (element) => {
      expect(elementProblem(element)).toBeDefined();
    },
  );
});

describe("sectionProblems", () => {
  const table = { family: "inet", name: "op_t" };
  const problemsOf = (tables: unknown[]) => sectionProblems({ tables }).map(problemLine);

  it("accepts a full table", () => {
    expect(
      problemsOf([
        {
          ...table,
          ensure: "present",
          sets: [
            {
              name: "s",
              type: "ipv4_addr",
              flags: ["interval"],
              elements: ["198.18.0.0/16"],
              comment: "x",
            },
          ],
          maps: [
            { name: "m", type: "ipv4_addr", map: "verdict", elements: [["198.18.1.1", "drop"]] },
          ],
          chains: [
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: "filter + 10",
              policy: "drop",
              rules: ["accept"],
            },
            { name: "ingress", type: "filter", hook: "ingress", priority: -500, device: "opt0" },
            { name: "other", comment: "regular chain", rules: [] },
          ],
        },
      ]),
    ).toEqual([]);
  });

  it("names unknown fields, bad families and bad names with their JSON path", () => {
    expect(problemsOf([{ ...table, colour: "red" }])).toEqual([
      '/plugins/nftables/tables/0: unknown field "colour"',
    ]);
    expect(problemsOf([{ family: "ipx", name: "t" }])).toEqual([
      '/plugins/nftables/tables/0/family: must be one of "inet", "ip", "ip6", "arp", "bridge", "netdev"',
    ]);
    expect(problemsOf([{ family: "inet", name: "t;x" }])[0]).toMatch(
      /^\/plugins\/nftables\/tables\/0\/name: must be an nft identifier/,
    );
    expect(problemsOf([{ ...table, chains: [{ name: "1c" }] }])[0]).toMatch(
      /tables\/0\/chains\/0\/name: /,
    );
  });

  it("refuses base-chain fields given partially", () => {
    expect(problemsOf([{ ...table, chains: [{ name: "c", type: "filter" }] }])).toEqual([
      "/plugins/nftables/tables/0/chains/0: a base chain needs type, hook and priority together (only type given)",
    ]);
    expect(problemsOf([{ ...table, chains: [{ name: "c", policy: "drop" }] }])).toEqual([
      "/plugins/nftables/tables/0/chains/0: policy and device need a base chain (type, hook and priority)",
    ]);
  });

  it("refuses comments with a quote or a newline", () => {
    for (const comment of ['say "hi"', "two\nlines"]) {
      expect(problemsOf([{ ...table, chains: [{ name: "c", comment }] }])).toEqual([
        '/plugins/nftables/tables/0/chains/0/comment: may not contain `"`, a newline or a control character',
      ]);
    }
  });

  it("refuses injected rules and elements at their path", () => {
    expect(
      problemsOf([
        { ...table, chains: [{ name: "c", rules: ["accept", "accept; flush ruleset"] }] },
      ]),
    ).toEqual([
      "/plugins/nftables/tables/0/chains/0/rules/1: contains `;` outside quotes (one entry per item)",
    ]);
    expect(
      problemsOf([
        {
          ...table,
          maps: [
            { name: "m", type: "ipv4_addr", map: "verdict", elements: [["198.18.0.1", "drop }"]] },
          ],
        },
      ]),
    ).toEqual(["/plugins/nftables/tables/0/maps/0/elements/0/1: contains `}` outside quotes"]);
  });

  it("refuses duplicate tables, chains and set names", () => {
    expect(
      problemsOf([
        {
          ...table,
          chains: [{ name: "c" }, { name: "c" }],
          sets: [{ name: "s", type: "ipv4_addr" }],
          maps: [{ name: "s", type: "ipv4_addr", map: "verdict" }],
        },
        table,
      ]),
    ).toEqual([
      '/plugins/nftables/tables/0/chains/1/name: chain "c" is given twice',
      '/plugins/nftables/tables/0/maps/0/name: set or map "s" is given twice',
      "/plugins/nftables/tables/1: table inet/op_t is given twice",
    ]);
  });

  it("still refuses injected rules when the schema is left to the engine", () => {
    expect(() =>
      validateSection(
        { tables: [{ family: "inet", name: "t", chains: [{ name: "c", rules: ["a; b"] }] }] },
        { schema: false },
      ),
    ).toThrow(OpError);
    expect(
      sectionProblems({ tables: [{ family: "inet", name: "t", colour: 1 }] }, "", false),
    ).toEqual([]);
  });

  it("checks in code the shapes script generation walks", () => {
    expect(
      tableProblems(
        { family: "inet", name: "t", chains: [{ name: "c", rules: "accept" }, "x"] },
        "",
      ).map(problemLine),
    ).toEqual([
      "/chains/0/rules: must be an array",
      "/chains/1: must be an object",
      "/chains/1/name: must be an nft identifier (a letter or `_`, then letters, digits, `_`, `-`, `.`)",
    ]);
  });

  it("validateSection throws invalid-state listing every problem", () => {
    let caught: unknown;
    try {
      validateSection({
        tables: [{ family: "inet", name: "t", chains: [{ name: "c", rules: ["a\nb"] }] }],
        extra: 1,
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OpError);
    const error = caught as OpError;
    expect(error.code).toBe("invalid-state");
    expect(error.details).toEqual([
      '/plugins/nftables: unknown field "extra"',
      "/plugins/nftables/tables/0/chains/0/rules/0: contains a newline (one entry per line)",
    ]);
  });
});
