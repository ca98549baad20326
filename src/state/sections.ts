/**
 * `op apply --plugin` / `op plan --plugin`: the plugins a run is scoped to, by name or alias.
 * The boot unit applies the network and firewall sections before Incus starts, when the lxc
 * section cannot be applied yet (packaging/op-apply.service). The file is still checked whole;
 * the run (RunRequest.plugins, as `op watch` scopes its runs) reads and plans only these.
 */
import { OpError } from "../errors.js";
import type { PluginRegistry } from "../registry.js";

/** The plugins' own names for `names` (names or aliases); an unknown one is a usage error. */
export function pluginScope(names: readonly string[], registry: PluginRegistry): string[] {
  const scope = names.map((name) => {
    const entry = registry.named(name);
    if (entry === undefined) {
      throw new OpError("usage", `--plugin ${name}: unknown plugin`, {
        hint: `op knows: ${registry.manifests.map((manifest) => manifest.name).join(", ")}`,
      });
    }
    return entry.name;
  });
  return [...new Set(scope)];
}
