/** The lxc plugin as op's registry knows it before loading it (src/registry.ts). */
import { defaultIncusSocket } from "../../src/incus.js";
import type { PluginManifest } from "../../src/registry.js";
import { ovsdbCheck } from "../network/manifest.js";

export const lxcManifest: PluginManifest = {
  name: "lxc",
  order: 20,
  schema: "lxc",
  doctor: [
    {
      name: "Incus (socket and API)",
      neededFor: "lxc",
      required: false,
      probe: async () =>
        (await import("./doctor.js")).probeIncus(process.env.OP_INCUS_SOCKET || defaultIncusSocket),
      hint: "install incus from bookworm-backports and start incusd (scripts/setup-incus.sh), or point OP_INCUS_SOCKET at its socket",
    },
    ovsdbCheck,
  ],
  load: async () => (await import("./index.js")).lxcPlugin,
};
