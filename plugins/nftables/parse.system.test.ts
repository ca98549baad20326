/**
 * nft itself loads what parse.ts writes back (in an empty network namespace of its own, made
 * by `unshare -n`, so no host table is read or touched).
 */
import { describe, expect, it } from "vitest";
import { createRunner } from "../../src/exec.js";
import { parseRuleset, tableToNftJson } from "./parse.js";
import { nftListing as listing } from "./testing.js";

describe("parseRuleset", () => {
  it("turns a table back into nft JSON that nft loads (chains before verdict maps)", async () => {
    const [table] = parseRuleset(listing, "test").tables;
    if (!table) throw new Error("no table");
    const input = JSON.stringify({ nftables: tableToNftJson({ ...table, objects: [] }) });
    const result = await createRunner().run(
      "unshare",
      ["-n", "sh", "-c", "cat | nft -j -f - && nft -j -s list ruleset"],
      { input },
    );
    const [loaded] = parseRuleset(result.stdout, "test").tables;
    expect(loaded?.chains.map((c) => [c.name, c.props, c.rules.map((r) => r.expr)])).toEqual(
      table.chains.map((c) => [c.name, c.props, c.rules.map((r) => r.expr)]),
    );
    expect(loaded?.maps).toEqual(table.maps);
  });
});
