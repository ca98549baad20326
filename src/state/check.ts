/**
 * Checking a parsed state file, with nothing on the host read or changed: the schemas, then
 * each plugin's own `check`, and (for `op validate`) each plugin's checks by a tool run in
 * isolation. Every problem of the file is reported at once, in one format (src/problems.ts).
 */
import { defaultSettings, type Settings } from "../host/settings.js";
import type { Ctx, Plugin } from "../plugin.js";
import type { Problem } from "../problems.js";
import type { PluginRegistry } from "../registry.js";
import { trace } from "../trace.js";
import { ignoreProblems } from "./ignore.js";
import { invalid, readSchemas, type StateDocument } from "./validate.js";

/**
 * A plugin's checks that need a tool but never the host's state (nft's parser in a throw-away
 * namespace). `op validate` runs them; plan and apply get the same refusals from `prepare`,
 * which caches them. A tool that cannot run is a warning, not a problem of the file.
 */
export interface ToolCheck {
  checkWithTools?(
    section: unknown,
    path: string,
    ctx: Ctx,
  ): Promise<{ problems: Problem[]; warnings: Problem[] }>;
}

export interface StateCheck {
  document: StateDocument;
  /** The plugins the file has sections for, in create order. */
  plugins: Plugin[];
  /** Everything wrong with the file; empty when it is valid. */
  problems: Problem[];
  /** What is not wrong but will be ignored (an unused key). */
  warnings: Problem[];
}

export interface CheckOptions {
  /** Run the plugins' tool checks (`ToolCheck`) with this context. */
  tools?: Ctx;
  /** The environment's defaults the plugins' checks need (default: the tools' ctx's, else none set). */
  settings?: Settings;
}

/**
 * Every problem of a parsed file at once. A plugin's `check` sees only what its schema
 * accepts (see `SchemaReading.checkable`): a section that failed its schema is checked
 * without its invalid values, so a bad MTU does not hide a bad prefix.
 */
export async function inspectState(
  parsed: unknown,
  registry: PluginRegistry,
  options: CheckOptions = {},
): Promise<StateCheck> {
  trace("check state");
  const reading = readSchemas(parsed, registry.manifests);
  trace("state validated");
  const plugins = await registry.load(reading.sections.keys());
  const problems = [...reading.problems];
  const warnings: Problem[] = [];
  const settings = options.settings ?? options.tools?.settings ?? defaultSettings;
  const checked = plugins.flatMap((plugin) => {
    const checkable = reading.checkable.get(plugin.name);
    if (checkable === undefined) return [];
    const { section, filePath } = checkable;
    const path = reading.paths.get(plugin.name) ?? "";
    const inFile = (problem: Problem): Problem => ({ ...problem, path: filePath(problem.path) });
    const report = plugin.check(section, path, settings);
    problems.push(
      ...report.problems.map(inFile),
      ...ignoreProblems(plugin, section, path).map(inFile),
    );
    warnings.push(...report.warnings.map(inFile));
    return [{ plugin: plugin as Plugin & ToolCheck, section, path, filePath }];
  });
  const { tools } = options;
  if (tools !== undefined) {
    const results = await Promise.all(
      checked.map(({ plugin, section, path }) => plugin.checkWithTools?.(section, path, tools)),
    );
    results.forEach((result, index) => {
      const filePath = checked[index]?.filePath ?? ((at: string) => at);
      const inFile = (problem: Problem) => ({ ...problem, path: filePath(problem.path) });
      problems.push(...(result?.problems ?? []).map(inFile));
      warnings.push(...(result?.warnings ?? []).map(inFile));
    });
  }
  const { version, sections, paths } = reading;
  return { document: { version, sections, paths }, plugins, problems, warnings };
}

/**
 * The file checked: its warnings given to `warn`, and `invalid-file` thrown naming every
 * problem, if it has any.
 */
export async function checkState(
  parsed: unknown,
  file: string,
  registry: PluginRegistry,
  warn: (warning: Problem) => void,
  options: CheckOptions = {},
): Promise<{ document: StateDocument; plugins: Plugin[] }> {
  const { document, plugins, problems, warnings } = await inspectState(parsed, registry, options);
  for (const warning of warnings) warn(warning);
  if (problems.length > 0) throw invalid(file, problems);
  return { document, plugins };
}
