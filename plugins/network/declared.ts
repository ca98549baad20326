/**
 * The links a file's network section declares, with their JSON paths, for another plugin that
 * must not take their names (an Incus managed network makes a bridge of its own name). This is
 * the one place that knows how the network section names its links, so no other plugin reads
 * its fields.
 */
import type { NetworkSection } from "../../src/generated/network.js";
import type { FileView } from "../../src/plugin.js";
import { networkPluginName } from "./refs.js";

export function declaredLinks(file: FileView): { name: string; path: string }[] {
  const section = file.sections.get(networkPluginName) as NetworkSection | undefined;
  return (section?.interfaces ?? []).map((link, index) => ({
    name: link.name,
    path: `/plugins/${networkPluginName}/interfaces/${index}/name`,
  }));
}
