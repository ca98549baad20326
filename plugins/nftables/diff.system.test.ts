import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ctx } from "../../src/plugin.js";
import { quietCtx } from "../../test/support/engine.js";
import { createNetns, type TestNetns } from "../../test/support/netns.js";
import { nftablesRunner } from "../../test/support/nftables.js";
import { diffNftables } from "./diff.js";
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
  let netns: TestNetns;
  let ctx: Ctx;
  beforeAll(() => {
    netns = createNetns("nft-fx");
    ctx = quietCtx({ exec: nftablesRunner(netns.name) });
  });
  afterAll(() => netns?.remove());

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
