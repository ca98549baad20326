/** What a network section's `ignore` list applies to: links, OVS bridges and OVS ports, by name. */

import type { NetworkSection } from "../../src/generated/network.js";
import type { Ignorable, IgnorableName } from "../../src/plugin.js";
import type { NetLive } from "./types.js";

const link = (name: string, path: string): IgnorableName => ({ noun: "link", name, path });

export const networkIgnore: Ignorable<NetLive> = {
  // Every link the section would create, change, enrol or route over: interfaces, veth peers,
  // bridge and OVS ports (op's and op-dbus's), and the links of its routes.
  declared: (section) => {
    const { interfaces = [], routes = [] } = section as NetworkSection;
    return [
      ...interfaces.flatMap((entry, i) => [
        link(entry.name, `/interfaces/${i}/name`),
        ...(entry.veth?.peer === undefined
          ? []
          : [link(entry.veth.peer, `/interfaces/${i}/veth/peer`)]),
        ...(entry.bridge?.ports ?? []).map((port, j) =>
          link(port, `/interfaces/${i}/bridge/ports/${j}`),
        ),
        ...(entry.ports ?? []).map((port, j) => link(port, `/interfaces/${i}/ports/${j}`)),
        ...(entry.ovs?.ports ?? []).map((port, j) =>
          link(port.name, `/interfaces/${i}/ovs/ports/${j}/name`),
        ),
      ]),
      ...routes.map((route, i) => link(route.dev, `/routes/${i}/dev`)),
    ];
  },
  // A Linux bridge's ports are its links' `master`: an ignored port goes with its link. Uplinks
  // and default routes stay: the guard still protects the host through an ignored link.
  without: (live, ignored) => ({
    ...live,
    links: live.links.filter((link) => !ignored(link.name)),
    routes: live.routes.filter((route) => !ignored(route.dev)),
    ovs: live.ovs.available
      ? {
          ...live.ovs,
          bridges: live.ovs.bridges
            .filter((bridge) => !ignored(bridge.name))
            .map((bridge) => ({
              ...bridge,
              ports: bridge.ports.filter((port) => !ignored(port.name)),
            })),
        }
      : live.ovs,
  }),
};
