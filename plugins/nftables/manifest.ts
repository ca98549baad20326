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
      probe: ({ exec }) => toolVersion(exec, "nft"),
      hint: "apt-get install nftables",
    },
    {
      name: "nsenter",
      neededFor: "nftables (rule normalisation)",
      required: true,
      probe: ({ exec }) => toolVersion(exec, "nsenter"),
      hint: "apt-get install util-linux",
    },
  ],
  load: async () => (await import("./index.js")).nftablesPlugin,
};
