/**
 * Pre-images for nftables (src/plugin.ts ResourceImages): each table a run touches as op export
 * writes it from nft's own listing of that table, or `ensure: absent` when there is none; an
 * undo is then the plugin's usual replace of the table in one nft transaction. A table holding
 * what op's format cannot write (a flowtable, a named counter) is refused, with the reason.
 */
import type { NftTableSpec } from "../../src/generated/nftables.js";
import type { Ctx, ResourceImage } from "../../src/plugin.js";
import { exportFromListing } from "./export.js";
import { nftFailed } from "./query.js";
import type { NftLive } from "./types.js";

/** The tables an undo sets, as `family/name` (the actions' ids). */
export interface NftablesScope {
  tables: string[];
}

/** Pure: the tables the actions create, replace or delete. */
export function nftablesScope(actions: readonly { id: string }[]): NftablesScope {
  return { tables: [...new Set(actions.map((action) => action.id))] };
}

export async function nftablesImage(
  scope: unknown,
  live: NftLive,
  ctx: Ctx,
): Promise<ResourceImage> {
  // One listing per table, all at once: each is the table's own text and notes.
  const images = await Promise.all(
    (scope as NftablesScope).tables.map((id) => tableImage(id, live, ctx)),
  );
  const tables = images.flatMap((image) => (image.spec === undefined ? [] : [image.spec]));
  return {
    section: tables.length === 0 ? undefined : { tables },
    refused: images.flatMap((image) => image.refused),
  };
}

/** One table as nft lists it, or absent when the host has none. */
async function tableImage(
  id: string,
  live: NftLive,
  ctx: Ctx,
): Promise<{ spec?: NftTableSpec; refused: string[] }> {
  const [family = "", name = ""] = id.split("/");
  if (!live.tables.some((table) => table.family === family && table.name === name)) {
    return {
      spec: { family: family as NftTableSpec["family"], name, ensure: "absent" },
      refused: [],
    };
  }
  // The text nft prints is what it parses back to the same table (see export.ts).
  const args = ["-a", "-s", "list", "table", family, name];
  const listed = await ctx.exec.run("nft", args, { check: false });
  if (listed.exitCode !== 0)
    throw nftFailed(`nft ${args.join(" ")}`, listed.stderr || listed.stdout);
  const exported = exportFromListing(listed.stdout, { all: true });
  const refused = exported.notes.map((note) => `table ${id}: ${note}`);
  const spec = (exported.section as { tables?: NftTableSpec[] } | undefined)?.tables?.[0];
  if (spec === undefined) refused.push(`table ${id}: nft listed nothing op can write`);
  return { ...(spec === undefined ? {} : { spec }), refused };
}
