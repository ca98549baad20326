/**
 * The plugins op knows, in create order (network before lxc before nftables; deletes run in
 * the reverse order).
 */
import { lxcPlugin } from "../plugins/lxc/index.js";
import { networkPlugin } from "../plugins/network/index.js";
import { nftablesPlugin } from "../plugins/nftables/index.js";
import type { Plugin } from "./plugin.js";

export const plugins: readonly Plugin[] = [
  networkPlugin as Plugin,
  lxcPlugin as Plugin,
  nftablesPlugin as Plugin,
];

export function pluginNamed(name: string): Plugin | undefined {
  return plugins.find((plugin) => plugin.name === name || plugin.aliases?.includes(name));
}
