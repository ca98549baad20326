/**
 * A section's `ignore` list: names or globs of objects op never reads into a plan or touches.
 * The engine applies it to the live state a plugin's query returns, before resolve, diff and
 * guard see it (and again at verify), so every caller of the plan path (plan, apply, check,
 * watch) honours it without code of its own. The plugin says how its objects are named
 * (Plugin.ignore); a section with a list but a plugin without that contract is refused by the
 * schema, which gives `ignore` only to plugins that have it.
 */
import { compileGlob, type Glob, GlobError } from "../glob.js";
import type { IgnoredTest, Plugin, Problem } from "../plugin.js";

/** The list as the section gives it, if it gives one (the schema checked its form). */
function listOf(section: unknown): readonly unknown[] {
  const list = (section as { ignore?: unknown } | null | undefined)?.ignore;
  return Array.isArray(list) ? list : [];
}

/** Each glob of the list, with its index; a glob that cannot be read is a problem. */
function globsOf(section: unknown, path: string): { globs: [number, Glob][]; problems: Problem[] } {
  const globs: [number, Glob][] = [];
  const problems: Problem[] = [];
  listOf(section).forEach((source, index) => {
    if (typeof source !== "string") return;
    try {
      globs.push([index, compileGlob(source)]);
    } catch (error) {
      if (!(error instanceof GlobError)) throw error;
      problems.push({
        path: `${path}/ignore/${index}`,
        message: `${JSON.stringify(source)} is not a glob op can read: it ${error.message}`,
        hint: "a glob has *, ? and [...] (with ! or ^ to negate), and \\ to take the next character as it is",
      });
    }
  });
  return { globs, problems };
}

/** The test for one section's list; undefined when it has none (nothing is hidden). */
export function ignoredBy(section: unknown): IgnoredTest | undefined {
  const { globs } = globsOf(section, "");
  if (globs.length === 0) return undefined;
  return (name, qualified) => globs.some(([, glob]) => matches(glob, name, qualified));
}

/** A glob with a `/` is about qualified names (`inet/incus`), one without about plain names. */
function matches(glob: Glob, name: string, qualified: string | undefined): boolean {
  if (!glob.source.includes("/")) return glob.matches(name);
  return qualified !== undefined && glob.matches(qualified);
}

/**
 * What is wrong with a section's list: a glob that cannot be read, and one that matches an
 * object the same section declares (op would both manage it and never look at it), each
 * naming both JSON paths. `path` is the section's JSON path in the file.
 */
export function ignoreProblems(plugin: Plugin, section: unknown, path: string): Problem[] {
  const { globs, problems } = globsOf(section, path);
  if (plugin.ignore === undefined || globs.length === 0) return problems;
  for (const { noun, name, qualified, path: at } of plugin.ignore.declared(section)) {
    for (const [index, glob] of globs) {
      if (!matches(glob, name, qualified)) continue;
      const shown = glob.source.includes("/") ? qualified : name;
      problems.push({
        path: `${path}/ignore/${index}`,
        message: `${JSON.stringify(glob.source)} matches the ${noun} ${JSON.stringify(shown)} that ${path}${at} declares: op cannot both manage it and ignore it`,
        hint: `take ${JSON.stringify(name)} out of the file, or narrow the glob so that it does not match it`,
      });
    }
  }
  return problems;
}

/** The live state a plugin plans against: without what its section ignores. */
export function withoutIgnored(plugin: Plugin, section: unknown, live: unknown): unknown {
  const ignored = ignoredBy(section);
  return ignored === undefined || plugin.ignore === undefined
    ? live
    : plugin.ignore.without(live, ignored);
}
