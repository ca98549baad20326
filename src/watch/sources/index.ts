/**
 * The event sources a watch starts: only those that give hints for the plugins its file uses.
 * OVSDB is skipped, not an error, when its socket is not there (Open vSwitch not installed).
 */
import type { Settings } from "../../host/settings.js";
import { createSys, type Sys } from "../../host/sys.js";
import type { HintSource } from "../hint.js";
import type { SourceIds } from "./ids.js";
import { incusSource } from "./incus.js";
import { ipSource } from "./ip.js";
import { nftSource } from "./nft.js";
import { ovsdbSource } from "./ovsdb.js";

export type { SourceIds } from "./ids.js";
export { lxcPlugin, networkPlugin, nftablesPlugin } from "./ids.js";

export interface SourceOptions {
  settings: Settings;
  ids: SourceIds;
  /** The network namespace `ip` and `nft` watch (the one the file's network objects are in). */
  netns?: string;
  /** Where to look for the OVSDB socket (default: the host's files). */
  sys?: Sys;
}

/** The sources for a file whose sections are `pluginNames`. */
export function sourcesFor(
  pluginNames: Iterable<string>,
  { settings, ids, netns, sys = createSys() }: SourceOptions,
): HintSource[] {
  const ovsSocket = `${settings.ovs.runDir}/db.sock`;
  const candidates: HintSource[] = [
    incusSource(ids, settings.incus.socket),
    ipSource(ids, netns),
    nftSource(ids, netns),
    ...(sys.exists(ovsSocket)
      ? [ovsdbSource(ids, ovsSocket, ids.ovsColumns, settings.ovs.timeoutSeconds)]
      : []),
  ];
  const wanted = new Set(pluginNames);
  // `ip` serves lxc too: a container's host-side veth renamed or removed by hand is no Incus event.
  return candidates.filter((candidate) => candidate.plugins.some((p) => wanted.has(p)));
}
