/** The nftables plugin as op's registry knows it before loading it (src/registry.ts). */
import { type PluginManifest, toolVersion } from "../../src/registry.js";

export const nftablesManifest: PluginManifest = {
  name: "nftables",
  order: 30,
  schema: "nftables",
  doctor: [
    {
      name: "nft",
      neededFor: "nftables",
      required: true,
      probe: (runner) => toolVersion(runner, "nft"),
      hint: "apt-get install nftables",
    },
    {
      name: "nsenter",
      neededFor: "nftables (rule normalisation)",
      required: true,
      probe: (runner) => toolVersion(runner, "nsenter"),
      hint: "apt-get install util-linux",
    },
  ],
  load: async () => (await import("./index.js")).nftablesPlugin,
};
