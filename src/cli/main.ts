/**
 * The CLI edge when op starts by loading its modules (bin/op.ts; scripts/op prefers the startup
 * snapshot, src/boot/snapshot.ts). `op --version` is answered before anything else loads.
 */
import { enableCompileCache } from "node:module";
import { join } from "node:path";
import type { PluginRegistry } from "../registry.js";
import { version } from "../version.js";
import type { WatchSeams } from "./watch.js";

export async function main(
  args: string[],
  loadEntry: () => Promise<{ registry: PluginRegistry; seams?: WatchSeams }>,
): Promise<void> {
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    process.stdout.write(`op ${version}\n`);
    return;
  }
  // V8's code cache speeds every later start. It lives in op's own cache directory (root's),
  // never in the default under /tmp, where another user could plant code for root to load;
  // made 0700 here, since Node would make it as the umask says (0777 under umask 000).
  // `op doctor` makes nothing, not even this: it reports whether the directory could be made.
  if (!args.includes("doctor")) await enableCodeCache();
  const [{ exitWith, prepareCli }, { registry, seams }] = await Promise.all([
    import("./run.js"),
    loadEntry(),
  ]);
  exitWith(await prepareCli(registry, seams)(args));
}

async function enableCodeCache(): Promise<void> {
  const [{ ensurePrivateDirectory }, { loadSettings }] = await Promise.all([
    import("../files.js"),
    import("../host/settings.js"),
  ]);
  try {
    // A bad OP_CACHE_DIR is reported by the command itself (usage error), not here.
    const { cacheDir } = loadSettings(process.env);
    const compileCache = join(cacheDir, "node-compile-cache");
    ensurePrivateDirectory(cacheDir, "cache directory");
    ensurePrivateDirectory(compileCache, "compile cache");
    enableCompileCache?.(compileCache);
  } catch {
    // No code cache then: slower, not wrong. A command that needs the cache says why.
  }
}
