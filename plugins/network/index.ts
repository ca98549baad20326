/**
 * The network plugin: Linux bridges, Open vSwitch bridges and ports, veth pairs, macvlan and
 * dummy links, link state, MTU, MAC, addresses and static routes. `plugins.net`
 * (the op-dbus name and format) is accepted as the same section.
 */
import type { NetworkSection } from "../../src/generated/network.js";
import type { Ctx, LiveReport, Plugin } from "../../src/plugin.js";
import { type ContainerVeth, fileContainerVeths } from "../lxc/veths.js";
import { applyNetwork } from "./apply.js";
import { diffNetwork } from "./diff.js";
import { exportNetwork } from "./export.js";
import { networkIgnore } from "./ignore.js";
import { networkImage, networkScope } from "./preimage.js";
import {
  type NetworkFromFile,
  networkProblems,
  normaliseNetwork,
  resolveNetwork,
  uplinkGuardProblems,
} from "./prepare.js";
import { queryNetwork } from "./query.js";
import { networkPluginName } from "./refs.js";
import type { NetDesired, NetLive, NetworkKinds } from "./types.js";

export type { NetDesired, NetLive } from "./types.js";

/** Open vSwitch is reached through ctx.host.ovs: a test points it at another socket there. */
export function createNetworkPlugin(): Plugin<NetDesired, NetLive, NetNormalised, NetworkKinds> {
  return {
    name: networkPluginName,
    aliases: ["net"],
    resources: {
      link: "a network interface: bridge, veth, macvlan, dummy, NIC or OVS interface",
      route: "a static route of the main table",
      "ovs-db": "the Open vSwitch database, changed by one transaction per run",
    },
    // Concurrent actions share one `ip -batch` process (batch.ts), so all of a wave may run
    // at once: 200 links then take a handful of processes instead of one per 8 links.
    concurrency: Number.POSITIVE_INFINITY,
    // What the file alone gets wrong (references, loops, addresses...), for `op validate`.
    check: (section, path) => ({
      problems: networkProblems(section as NetworkSection, path),
      warnings: [],
    }),
    ignore: networkIgnore,
    query: (ctx: Ctx) => queryNetwork(ctx),
    // The file's half while `ip` and OVSDB answer, the host's half once they have.
    normalise: async (section, _ctx, file) => ({
      fromFile: normaliseNetwork(section as NetworkSection),
      guests: fileContainerVeths(file),
    }),
    resolve: ({ fromFile, guests }, live, ctx) =>
      resolveNetwork(fromFile, live, {
        allowUplink: ctx.options.allowUplink,
        guests,
        ...(ctx.options.adopt === true ? { adopt: true } : {}),
      }),
    diff: diffNetwork,
    // What the file alone cannot show: a plan that would cut the host off its network.
    guard: (actions, live, options) =>
      options.allowUplink ? [] : uplinkGuardProblems(actions, live),
    apply: applyNetwork,
    report: reportNetwork,
    exportSection: exportNetwork,
    imageScope: networkScope,
    image: networkImage,
  };
}

export const networkPlugin: Plugin<NetDesired, NetLive, NetNormalised, NetworkKinds> =
  createNetworkPlugin();

/** The file's half of a network section: links, bridges and routes, and the lxc veths. */
export interface NetNormalised {
  fromFile: NetworkFromFile;
  guests: ContainerVeth[];
}

/** One row per link: type, state, MTU, addresses, bridge membership, and whether op owns it. */
export function reportNetwork(live: NetLive): LiveReport {
  const ovsBridgeOf = new Map(
    live.ovs.available
      ? live.ovs.bridges.flatMap((b) => b.ports.map((p) => [p.name, b.name] as const))
      : [],
  );
  const rows = live.links.map((link) => [
    link.name,
    link.type === "other" ? link.kind || "other" : link.type,
    link.state,
    String(link.mtu),
    [...link.ipv4, ...link.ipv6].join(" ") || "-",
    link.master ?? ovsBridgeOf.get(link.name) ?? "-",
    link.owned ? "yes" : "no",
  ]);
  // OVS ports whose device does not exist (yet): OVS attaches them when it appears.
  const names = new Set(live.links.map((link) => link.name));
  for (const [port, bridge] of ovsBridgeOf) {
    if (!names.has(port)) rows.push([port, "ovs-port", "absent", "-", "-", bridge, "-"]);
  }
  return { columns: ["name", "type", "state", "mtu", "addresses", "bridge", "owned"], rows };
}
