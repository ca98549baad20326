/** What an nftables section's `ignore` list applies to: tables, by name or `family/name`. */
import type { Ignorable } from "../../src/plugin.js";
import type { NftablesSection, NftLive } from "./types.js";

export const nftablesIgnore: Ignorable<NftLive> = {
  declared: (section) =>
    ((section as NftablesSection).tables ?? []).map((table, i) => ({
      noun: "table",
      name: table.name,
      qualified: `${table.family}/${table.name}`,
      path: `/tables/${i}/name`,
    })),
  without: (live, ignored) => ({
    ...live,
    tables: live.tables.filter((table) => !ignored(table.name, `${table.family}/${table.name}`)),
  }),
};
