/** The sysctl plugin as op's registry knows it before loading it (src/registry.ts). */
import { type PluginManifest, toolVersion } from "../../src/registry.js";

export const sysctlManifest: PluginManifest = {
  name: "sysctl",
  // After network, lxc and nftables: links exist and the firewall is in place before
  // forwarding is turned on.
  order: 40,
  schema: "sysctl",
  doctor: [
    {
      name: "sysctl",
      neededFor: "sysctl",
      required: false,
      probe: ({ exec }) => toolVersion(exec, "sysctl", ["--version"]),
      hint: "apt-get install procps",
    },
  ],
  warmUp: async () => (await import("./warmup.js")).warmUpFixtures,
  load: async () => (await import("./index.js")).sysctlPlugin,
};
