/**
 * `op export`: the live host as a state file in op's own format. Each plugin reads the host
 * with its own `query` and writes its section (Plugin.exportSection); a plugin whose daemon
 * or tool is missing is left out with a note, as `op query` shows the rest without it.
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { stringify } from "yaml";
import { createCtx } from "../context.js";
import { OpError, withContext } from "../errors.js";
import { writeFileAtomic } from "../files.js";
import type { Plugin } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import {
  exitCodes,
  type GlobalOptions,
  paths,
  requirePlugin,
  unavailableCodes,
} from "./commands.js";

export interface ExportOptions extends GlobalOptions {
  /** `--plugin`, repeatable: only these (names or aliases). */
  plugin?: string[];
  /** `--all`: also the objects op did not create. `--owned` is the default. */
  all?: boolean;
  format?: "json" | "yaml";
  /** `-o`: write here instead of stdout. */
  output?: string;
}

/** The format version of the state files op reads (schemas/state.schema.json). */
const stateVersion = 1;

export async function exportCommand(
  options: ExportOptions,
  registry: PluginRegistry,
): Promise<number> {
  const asked = (options.plugin ?? []).map((name) => requirePlugin(name, registry));
  // Refused before the host is read: a typo in -o should not cost a query.
  if (options.output !== undefined) checkOutputDirectory(options.output);
  const selected: readonly Plugin[] = await registry.load(asked.length > 0 ? asked : undefined);
  const where = paths(options);
  const ctx = createCtx({
    settings: options.settings,
    cacheDir: where.cacheDir,
    cacheKeyFile: where.cacheKeyFile,
    verbose: options.verbose ?? false,
  });
  const all = options.all ?? false;
  const notes: string[] = [];
  // The host is read by every plugin at once, as a plan does.
  const read = await Promise.all(
    selected.map(async (plugin) => {
      if (plugin.exportSection === undefined) {
        notes.push(`${plugin.name}: this plugin has no export; left out`);
        return undefined;
      }
      try {
        return { plugin, live: await plugin.query(ctx) };
      } catch (error) {
        const wrapped = withContext(error, { plugin: plugin.name, phase: "query" });
        // A host without Incus (or OVS) still exports the rest: the section is left out.
        if (wrapped instanceof OpError && unavailableCodes.has(wrapped.code)) {
          notes.push(
            `${plugin.name}: left out, the host could not be read: ${wrapped.message}${wrapped.hint ? ` (${wrapped.hint})` : ""}`,
          );
          return undefined;
        }
        throw wrapped;
      }
    }),
  );
  // Reverse create order, each seeing the sections before it (Plugin.exportSection).
  const sections = new Map<string, unknown>();
  for (const entry of [...read].reverse()) {
    if (entry === undefined) continue;
    const { plugin, live } = entry;
    const exportSection = plugin.exportSection as NonNullable<Plugin["exportSection"]>;
    const exported = await Promise.resolve()
      .then(() => exportSection(live, { all }, ctx, { sections }))
      .catch((error: unknown) => {
        throw withContext(error, { plugin: plugin.name, phase: "export" });
      });
    notes.push(...exported.notes.map((note) => `${plugin.name}: ${note}`));
    if (exported.section !== undefined) sections.set(plugin.name, exported.section);
    // A plugin that said why it has nothing needs no second note.
    else if (exported.notes.length === 0)
      notes.push(
        `${plugin.name}: nothing to export${all ? "" : " (op owns none; --all for the rest)"}`,
      );
  }
  const plugins = Object.fromEntries(
    selected.flatMap((plugin) =>
      sections.has(plugin.name) ? [[plugin.name, sections.get(plugin.name)]] : [],
    ),
  );
  const state = { version: stateVersion, plugins };
  const text = options.format === "yaml" ? stringify(state) : `${JSON.stringify(state, null, 2)}\n`;
  // Told in create order, as the file lists the sections (each note starts with its plugin).
  const rank = new Map(selected.map((plugin, index) => [plugin.name, index]));
  const rankOf = (note: string) => rank.get(note.slice(0, note.indexOf(":"))) ?? 0;
  for (const note of notes.sort((a, b) => rankOf(a) - rankOf(b)))
    process.stderr.write(`note: ${note}\n`);
  if (options.output === undefined) process.stdout.write(text);
  else writeFileAtomic(options.output, text, 0o644, "exported state file");
  return exitCodes.ok;
}

function checkOutputDirectory(output: string): void {
  const directory = dirname(resolve(output));
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch {
    // missing or unreadable: told below
  }
  if (!isDirectory) {
    throw new OpError("file-error", `cannot write ${output}: ${directory} is not a directory`, {
      hint: `create ${directory} first, or give -o a path in an existing directory`,
    });
  }
}
