/**
 * A state file cut down to some plugins' sections, for `op apply --plugin`: the boot unit
 * applies the network and firewall sections before Incus starts, when the lxc section cannot
 * be applied yet (packaging/op-apply.service). A plugin without a section is not touched by a
 * run, so the cut file changes nothing of the other plugins.
 */
import { OpError } from "../errors.js";
import type { PluginRegistry } from "../registry.js";

/**
 * `parsed` with only the sections of the plugins `names` gives (names or aliases). An unknown
 * name is a usage error; a section key no plugin has is kept, so the schemas still refuse it.
 */
export function onlyPlugins(
  parsed: unknown,
  names: readonly string[],
  registry: PluginRegistry,
): unknown {
  const wanted = new Set(
    names.map((name) => {
      const entry = registry.named(name);
      if (entry === undefined) {
        throw new OpError("usage", `--plugin ${name}: unknown plugin`, {
          hint: `op knows: ${registry.manifests.map((manifest) => manifest.name).join(", ")}`,
        });
      }
      return entry.name;
    }),
  );
  if (typeof parsed !== "object" || parsed === null) return parsed;
  const sections = (parsed as { plugins?: unknown }).plugins;
  if (typeof sections !== "object" || sections === null || Array.isArray(sections)) return parsed;
  const kept = Object.entries(sections).filter(([key]) => {
    const entry = registry.named(key);
    return entry === undefined || wanted.has(entry.name);
  });
  return { ...parsed, plugins: Object.fromEntries(kept) };
}
