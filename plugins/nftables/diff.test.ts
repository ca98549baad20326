import { describe, expect, it } from "vitest";
import { editScript, elementText, ruleKey } from "./diff.js";

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
