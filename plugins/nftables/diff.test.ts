import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ctx } from "../../src/plugin.js";
import { quietCtx } from "../../test/support/engine.js";
import { nftablesRunner } from "../../test/support/nftables.js";
import { diffNftables, editScript, elementText, ruleKey } from "./diff.js";
import { prepareNftables } from "./prepare.js";
import type { NftDesired, NftLive } from "./types.js";

const fixtures = join(import.meta.dirname, "fixtures");
const read = (folder: string, file: string): unknown =>
  JSON.parse(readFileSync(join(fixtures, folder, file), "utf8"));

/**
 * Fixtures whose desired model cannot come from a section: prepare always asks nft for the
 * text of live rules the file lacks, and this case is what the plan shows when nft could not
 * give it (the rule's JSON).
 */
const preparedByHand: Record<string, string> = {
  "live-rule-without-text": "nft could not render the live rule as text",
};

/**
 * Each fixture is the section a user writes (section.json), the host as real nft listed it
 * (live.json), and the plan expected (actions.json). The section goes through the real
 * prepare: nft loads it in a throw-away namespace, so the desired side is never pinned output.
 * Its host reads (the ownership of tables marked absent) go to an empty namespace of the test.
 */
describe("diff over fixtures (sections a user writes, live models from real nft output)", () => {
  const netns = `ops-fx-${randomBytes(3).toString("hex")}`;
  let ctx: Ctx;
  beforeAll(() => {
    execFileSync("ip", ["netns", "add", netns]);
    ctx = quietCtx({ exec: nftablesRunner(netns) });
  });
  afterAll(() => execFileSync("ip", ["netns", "delete", netns]));

  const cases = readdirSync(fixtures).sort();
  it("has the cases the plugin must handle", () => {
    expect(cases).toEqual(
      expect.arrayContaining([
        "converged",
        "create",
        "delete-absent",
        "absent-already-gone",
        "rule-added-by-hand",
        "rule-removed",
        "rule-order-changed",
        "policy-changed",
        "set-elements-changed",
        "undeclared-table-ignored",
        "table-dormant-by-hand",
        "chain-property-only-on-host",
      ]),
    );
  });

  for (const name of cases) {
    it(name, async () => {
      const live = read(name, "live.json") as NftLive;
      const byHand = preparedByHand[name] !== undefined;
      expect(existsSync(join(fixtures, name, byHand ? "desired.json" : "section.json"))).toBe(true);
      const desired = byHand
        ? (read(name, "desired.json") as NftDesired)
        : await prepareNftables(read(name, "section.json"), live, ctx);
      const snapshot = JSON.stringify([desired, live]);
      const actions = diffNftables(desired, live);
      // Plans go to the ledger as JSON: compare what survives serialisation. A missing
      // actions.json fails here: expected plans are written by people, never by the test.
      expect(JSON.parse(JSON.stringify(actions))).toEqual(read(name, "actions.json"));
      expect(JSON.stringify([desired, live])).toBe(snapshot);
      expect(diffNftables(desired, live)).toEqual(actions);
    });
  }
});

describe("editScript", () => {
  it("finds nothing to do for equal sequences", () => {
    expect(editScript(["a", "b"], ["a", "b"])).toEqual([]);
  });

  it("keeps the common part and names removals and additions in order", () => {
    expect(editScript(["a", "b", "c", "d"], ["a", "x", "c", "d", "y"])).toEqual([
      { op: "remove", index: 1 },
      { op: "add", index: 1 },
      { op: "add", index: 4 },
    ]);
  });

  it("shows a reorder as a change", () => {
    expect(editScript(["a", "b"], ["b", "a"])).toEqual([
      { op: "remove", index: 0 },
      { op: "add", index: 1 },
    ]);
  });

  it("handles duplicates", () => {
    // Common prefix "a" and suffix "b" are kept; the middle "a" becomes "b".
    expect(editScript(["a", "a", "b"], ["a", "b", "b"])).toEqual([
      { op: "remove", index: 1 },
      { op: "add", index: 1 },
    ]);
  });
});

describe("rule keys and element texts", () => {
  const tcp = {
    match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 22 },
  };

  it("ignores handles and the order of anonymous set elements, not comments", () => {
    const set = (items: unknown[]) => [
      { match: { op: "==", left: { meta: { key: "iif" } }, right: { set: items } } },
    ];
    expect(ruleKey({ expr: set(["b", "a"]), handle: 4 })).toBe(
      ruleKey({ expr: set(["a", "b"]), handle: 9 }),
    );
    expect(ruleKey({ expr: [tcp], comment: "x" })).not.toBe(ruleKey({ expr: [tcp] }));
    expect(ruleKey({ expr: [tcp, { accept: null }] })).not.toBe(
      ruleKey({ expr: [{ accept: null }, tcp] }),
    );
  });

  it("writes nft's element JSON as nft syntax", () => {
    expect(elementText({ prefix: { addr: "198.18.0.0", len: 15 } })).toBe("198.18.0.0/15");
    expect(elementText({ range: ["198.18.0.1", "198.18.0.9"] })).toBe("198.18.0.1-198.18.0.9");
    expect(elementText({ concat: ["198.18.0.1", 22] })).toBe("198.18.0.1 . 22");
    expect(elementText([22, { jump: { target: "ssh" } }])).toBe("22 : jump ssh");
    expect(elementText(["198.18.1.1", { drop: null }])).toBe("198.18.1.1 : drop");
    expect(elementText({ elem: { val: "198.18.0.1", timeout: 3600 } })).toBe(
      "198.18.0.1 timeout 3600",
    );
  });
});
