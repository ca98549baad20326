/** The network plugin as op's registry knows it before loading it (src/registry.ts). */
import { type DoctorCheck, type PluginManifest, toolVersion } from "../../src/registry.js";

/** Shared with the lxc plugin, which enrols container veths in Open vSwitch bridges. */
export const ovsdbCheck: DoctorCheck = {
  name: "Open vSwitch (OVSDB socket)",
  neededFor: "network and lxc (Open vSwitch bridges only)",
  required: false,
  probe: async ({ host }) => (await import("./doctor.js")).probeOvsdb(host.ovs),
  hint: "apt-get install openvswitch-switch, then /usr/share/openvswitch/scripts/ovs-ctl start (in a clone of op, scripts/setup-ovs.sh does both)",
};

export const networkManifest: PluginManifest = {
  name: "network",
  aliases: ["net"],
  order: 10,
  schema: "network",
  doctor: [
    {
      name: "ip",
      neededFor: "network",
      required: false,
      probe: ({ exec }) => toolVersion(exec, "ip", ["-V"]),
      hint: "apt-get install iproute2",
    },
    ovsdbCheck,
  ],
  warmUp: async () => (await import("./warmup.js")).warmUpFixtures,
  load: async () => (await import("./index.js")).networkPlugin,
};
