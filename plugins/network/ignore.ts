/** What a network section's `ignore` list applies to: links, OVS bridges and OVS ports, by name. */

import type { NetworkSection } from "../../src/generated/network.js";
import type { Ignorable } from "../../src/plugin.js";
import type { NetLive } from "./types.js";

export const networkIgnore: Ignorable<NetLive> = {
  // Every link the section would create, change or enrol: interfaces, veth peers and ports.
  declared: (section) =>
    ((section as NetworkSection).interfaces ?? []).flatMap((link, i) => [
      { noun: "link", name: link.name, path: `/interfaces/${i}/name` },
      ...(link.veth?.peer === undefined
        ? []
        : [{ noun: "link", name: link.veth.peer, path: `/interfaces/${i}/veth/peer` }]),
      ...(link.bridge?.ports ?? []).map((port, j) => ({
        noun: "link",
        name: port,
        path: `/interfaces/${i}/bridge/ports/${j}`,
      })),
      ...(link.ovs?.ports ?? []).map((port, j) => ({
        noun: "link",
        name: port.name,
        path: `/interfaces/${i}/ovs/ports/${j}/name`,
      })),
    ]),
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
