/**
 * The plugins op knows: the one place that names them. Adding a plugin is a folder with its
 * manifest.ts and one line here; the manifest's `order` is its create order.
 */
import { createRegistry } from "../src/registry.js";
import { lxcManifest } from "./lxc/manifest.js";
import { networkManifest } from "./network/manifest.js";
import { nftablesManifest } from "./nftables/manifest.js";
import { sysctlManifest } from "./sysctl/manifest.js";

export const registry = createRegistry([
  networkManifest,
  lxcManifest,
  nftablesManifest,
  sysctlManifest,
]);
