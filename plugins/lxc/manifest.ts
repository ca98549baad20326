/** The lxc plugin as op's registry knows it before loading it (src/registry.ts). */
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
      probe: async ({ settings }) =>
        (await import("./doctor.js")).probeIncus(settings.incus.socket),
      hint: "install incus (from bookworm-backports on Debian 12) and start incusd, or point OP_INCUS_SOCKET at its socket (in a clone of op, scripts/setup-incus.sh does both)",
    },
    ovsdbCheck,
  ],
  load: async () => (await import("./index.js")).lxcPlugin,
};
