import { describe, expect, it } from "vitest";
import { canonicalJson } from "./hash.js";
import { type LedgerRecord, recordBody } from "./store.js";

const base: LedgerRecord = {
  seq: 17,
  time: "2025-03-01T00:00:00.000Z",
  host: "web1",
  run: "01JD3X",
  plugin: "nftables",
  action: "modify",
  target: "inet/op_demo",
  status: "ok",
};

describe("record body", () => {
  // recordBody writes the fixed top level by hand; it must stay byte-equal to the package's
  // canonical form of the whole record.
  it.each<[string, Partial<LedgerRecord>]>([
    ["no changes, no error", {}],
    ["field changes", { changes: [{ path: "mtu", before: 1500, after: 9000 }] }],
    [
      "a created object with integer-like and unicode keys",
      { changes: { "10": 1, "9": 2, é: [1e21, 0.1, -0], "😀": null } },
    ],
    ["a failure", { status: "failed", error: 'nft: "syntax"\nline 2\u0007' }],
    [
      "escapes and non-ASCII in every string",
      { host: "h\\ö", run: "\u2028", plugin: 'p"', target: "t/\u00e9\u20ac" },
    ],
    ["a large sequence number", { seq: 9007199254740991 }],
    ["changes that are a bare value", { changes: "renamed" }],
    ["an outcome op cannot know", { status: "unknown", error: "Incus went away" }],
    ["a settled intent", { status: "settled", settles: 9, changes: { found: "created" } }],
  ])("equals canonical JSON: %s", (_name, overrides) => {
    const record = { ...base, ...overrides } as LedgerRecord;
    expect(recordBody(record)).toBe(canonicalJson(record));
  });

  it("refuses what has no canonical form", () => {
    expect(() => recordBody({ ...base, changes: { n: Number.POSITIVE_INFINITY } })).toThrow();
    expect(() => recordBody({ ...base, target: "bad \ud800" })).toThrow();
  });
});
