/** The nftables plugin: the tables op owns, each replaced as one atomic nft transaction. */
import { type LiveReport, liveLater, type Plugin } from "../../src/plugin.js";
import type { ToolCheck } from "../../src/state/check.js";
import { applyNftables } from "./apply.js";
import { diffNftables } from "./diff.js";
import { exportNftables } from "./export.js";
import { nftablesIgnore } from "./ignore.js";
import { nftablesImage, nftablesScope } from "./preimage.js";
import { nftParserCheck, prepareNftables } from "./prepare.js";
import { queryNftables } from "./query.js";
import type { NftDesired, NftKinds, NftLive } from "./types.js";
import { sectionProblems } from "./validate.js";

export type { NftDesired, NftLive } from "./types.js";

export function reportNftables(live: NftLive): LiveReport {
  return {
    columns: ["family", "name", "chains", "rules", "sets", "maps"],
    rows: live.tables.map((table) => [
      table.family,
      table.name,
      String(table.chains.length),
      String(table.chains.reduce((sum, chain) => sum + chain.rules.length, 0)),
      String(table.sets.length),
      String(table.maps.length),
    ]),
  };
}

/** The file's half, started: it gets the live state when nft has listed the ruleset. */
type NftNormalised = ReturnType<typeof liveLater<NftLive, NftDesired>>;

export const nftablesPlugin: Plugin<NftDesired, NftLive, NftNormalised, NftKinds> & ToolCheck = {
  name: "nftables",
  resources: { table: "an nftables table, replaced whole by one nft transaction" },
  // The schema has already run by then; these are the checks it cannot express.
  check: (section, path) => ({ problems: sectionProblems(section, path, false), warnings: [] }),
  // `op validate`: every rule through nft's own parser, in a throw-away namespace.
  checkWithTools: nftParserCheck,
  ignore: nftablesIgnore,
  query: queryNftables,
  // prepareNftables checks the file's tables first, then awaits the live state (whose nft
  // version keys the normalised rules).
  normalise: async (section, ctx) =>
    liveLater((live: Promise<NftLive>) => prepareNftables(section, live, ctx)),
  resolve: (started, live) => started.resolve(live),
  diff: diffNftables,
  apply: applyNftables,
  report: reportNftables,
  // The text nft prints: the JSON query reads lacks rule text and op's table mark.
  exportSection: exportNftables,
  imageScope: nftablesScope,
  image: nftablesImage,
};
