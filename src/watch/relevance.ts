/**
 * Which hints concern the watched file. A source serves every object of its kind on the host
 * (every link is an `ip monitor` event, every instance an Incus event), and a run for an
 * object the file does not name can find nothing to correct: it only spends the rate limit
 * that real drift needs. Prune of op's own objects the file dropped is a change of the file,
 * applied at start, reload and every resync.
 */
import type { Plugin } from "../plugin.js";
import type { StateDocument } from "../state/validate.js";
import type { Hint } from "./hint.js";

/** Per plugin, the names (plain and qualified) of the objects the file declares. */
export type DeclaredNames = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * The names the file's sections declare, from each plugin's own account of them (the one its
 * `ignore` list uses). A plugin that gives none is left out: every hint of it counts.
 */
export function declaredNames(document: StateDocument, plugins: readonly Plugin[]): DeclaredNames {
  const names = new Map<string, Set<string>>();
  for (const plugin of plugins) {
    const section = document.sections.get(plugin.name);
    if (plugin.ignore === undefined || section === undefined) continue;
    const declared = plugin.ignore.declared(section);
    names.set(
      plugin.name,
      new Set(
        declared.flatMap((entry) => [entry.name, ...(entry.qualified ? [entry.qualified] : [])]),
      ),
    );
  }
  return names;
}

/**
 * Whether a hint may concern the file: it names no object (a plugin-wide hint), its plugin
 * cannot say what it declares, or the object (or, for a route, the link it goes over) is one
 * the file names. An OVSDB hint is about the database as a whole, which the file's OVS
 * bridges live in.
 */
export function concernsFile(hint: Hint, declared: DeclaredNames): boolean {
  if (hint.id === undefined || hint.source === "ovsdb") return true;
  const names = declared.get(hint.plugin);
  if (names === undefined) return true;
  if (names.has(hint.id)) return true;
  const device = / dev (\S+)$/.exec(hint.id)?.[1];
  return device !== undefined && names.has(device);
}
