/**
 * The host bridges an lxc section's Incus managed networks make (a network of type bridge is
 * a link of its name), for the network plugin's export: such a bridge is Incus's to make, and
 * a file that declared it in both sections would be refused. Pure and read-only, like
 * veths.ts: the one place that knows how an lxc section names them.
 */
import type { LxcSection } from "../../src/generated/lxc.js";
import type { FileView } from "../../src/plugin.js";
import { plugin } from "./types.js";

export function fileNetworkBridges(file: FileView): string[] {
  const section = file.sections.get(plugin) as LxcSection | undefined;
  return (section?.networks ?? [])
    .filter((network) => network.ensure !== "absent")
    .map((network) => network.name);
}
