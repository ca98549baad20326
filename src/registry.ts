/**
 * The plugins op knows, in create order (network before lxc before nftables; deletes run in
 * the reverse order). Each is loaded only when a run needs it: a file with only a network
 * section never loads the Incus client or the nftables code.
 */
import type { Plugin } from "./plugin.js";

export interface PluginEntry {
  name: string;
  /** Other names accepted for the plugin's section in a state file. */
  aliases?: readonly string[];
  load(): Promise<Plugin>;
}

export const pluginEntries: readonly PluginEntry[] = [
  {
    name: "network",
    aliases: ["net"],
    load: async () => (await import("../plugins/network/index.js")).networkPlugin as Plugin,
  },
  { name: "lxc", load: async () => (await import("../plugins/lxc/index.js")).lxcPlugin as Plugin },
  {
    name: "nftables",
    load: async () => (await import("../plugins/nftables/index.js")).nftablesPlugin as Plugin,
  },
];

export function entryNamed(name: string): PluginEntry | undefined {
  return pluginEntries.find((entry) => entry.name === name || entry.aliases?.includes(name));
}

/** The named plugins (all when no names are given), loaded in parallel, in create order. */
export function loadPlugins(names?: Iterable<string>): Promise<Plugin[]> {
  const wanted = names === undefined ? undefined : new Set(names);
  return Promise.all(
    pluginEntries
      .filter((entry) => wanted === undefined || wanted.has(entry.name))
      .map((entry) => entry.load()),
  );
}
