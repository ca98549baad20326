import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { reportNftables } from "./index.js";
import { parseRuleset } from "./parse.js";
import { interfaceNames, parseRuleTexts } from "./prepare.js";
import { nftListing as listing } from "./testing.js";

describe("parseRuleset", () => {
  it("builds the model without handles in what is compared, and without element expiry", () => {
    expect(parseRuleset(listing, "test")).toEqual({
      version: "1.0.6",
      tables: [
        {
          family: "inet",
          name: "t",
          props: {},
          chains: [
            {
              name: "c",
              props: { type: "filter", hook: "input", priority: 0, policy: "drop" },
              rules: [{ expr: [{ counter: null }, { accept: null }], comment: "x", handle: 9 }],
            },
            { name: "d", props: {}, rules: [] },
          ],
          sets: [
            {
              name: "s",
              props: { type: "ipv4_addr", flags: ["timeout"] },
              elements: [{ elem: { val: "198.18.0.1", timeout: 3600 } }, "198.18.0.2"],
            },
          ],
          maps: [
            {
              name: "v",
              props: { type: "inet_service", map: "verdict" },
              elements: [[22, { jump: { target: "d" } }]],
            },
          ],
          objects: ["counter hits"],
        },
        { family: "ip", name: "other", props: {}, chains: [], sets: [], maps: [], objects: [] },
      ],
    });
  });

  it("refuses output that is not nft's JSON", () => {
    expect(() => parseRuleset("table inet t {", "nft -j list ruleset")).toThrow(OpError);
    expect(() => parseRuleset("{}", "nft -j list ruleset")).toThrow(/without an "nftables" list/);
  });
});

describe("parseRuleTexts", () => {
  it("reads rules per chain from `nft -a list ruleset`, skipping chain headers and set blocks", () => {
    const text = [
      "table inet t { # handle 1",
      "\tset s { # handle 3",
      "\t\ttype ipv4_addr",
      "\t\telements = { 198.18.0.1 }",
      "\t}",
      "",
      "\tchain c { # handle 1",
      '\t\tcomment "in"',
      "\t\ttype filter hook input priority filter; policy drop;",
      "\t\ttcp dport { 22, 80 } accept # handle 6",
      '\t\tip saddr @s counter packets 0 bytes 0 accept comment "a # handle 2" # handle 7',
      "\t}",
      "\tchain d { # handle 2",
      "\t}",
      "}",
    ].join("\n");
    expect(parseRuleTexts(text)).toEqual(
      new Map([
        [
          "inet/t/c",
          [
            "tcp dport { 22, 80 } accept",
            'ip saddr @s counter packets 0 bytes 0 accept comment "a # handle 2"',
          ],
        ],
        ["inet/t/d", []],
      ]),
    );
  });
});

describe("interfaceNames", () => {
  it("finds interfaces rules name by index, and chain devices", () => {
    expect(
      interfaceNames([
        {
          family: "netdev",
          name: "t",
          chains: [
            { name: "c", type: "filter", hook: "ingress", priority: 0, device: "opt0" },
            {
              name: "d",
              rules: [
                'iif "opt1" accept',
                "oif != opt2 drop",
                'meta iif { opt3, "opt4" } accept',
                "iifname opt9 accept",
                "iif lo accept",
                "iif vmap { opt5 : drop }",
              ],
            },
          ],
        },
      ]),
    ).toEqual(["opt0", "opt1", "opt2", "opt3", "opt4"]);
  });
});

describe("reportNftables", () => {
  it("has one row per live table", () => {
    expect(reportNftables(parseRuleset(listing, "test"))).toEqual({
      columns: ["family", "name", "chains", "rules", "sets", "maps"],
      rows: [
        ["inet", "t", "2", "1", "1", "1"],
        ["ip", "other", "0", "0", "0", "0"],
      ],
    });
  });
});
