#!/usr/bin/env node
/**
 * Builds op's V8 startup snapshot, dist/op.blob (see src/cli/snapshot.ts for why), from the
 * compiled JavaScript in dist/: esbuild bundles dist/src/cli/snapshot.js and all it imports
 * into one CommonJS script (node builds a snapshot from a single script), then the Node that
 * scripts/op runs executes it with --build-snapshot. A blob only fits the node binary that
 * built it, so it is rebuilt with every build (npm run build; setup.sh builds after installs).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = join(root, "dist", "op-snapshot.cjs");
const blob = join(root, "dist", "op.blob");
const projectNode = join(root, "node_modules", "node", "bin", "node");
const node = existsSync(projectNode) ? projectNode : process.execPath;

/**
 * A native addon cannot be in a snapshot, but the JavaScript around it can: LevelDB's package
 * (classic-level and abstract-level, ~15 ms to compile at every run that opens the ledger) is
 * bundled, and only its addon is loaded at run time, on the first call into it.
 * node-gyp-build, which finds the addon for this platform next to its package, runs here, at
 * build time (the blob is for this machine's node anyway), and the bundle keeps only the
 * addon's path within the op tree: at run time it is process.dlopen'ed from OP_ROOT (which
 * scripts/op sets, so that a moved tree still finds it; else where it was built). Loading it
 * through node:module instead cost another ~10 ms of Node's own modules at each run.
 */
const requireHere = createRequire(import.meta.url);
const addonLoader = {
  name: "addon-at-run-time",
  setup(builder) {
    builder.onResolve({ filter: /^node-gyp-build$/ }, (args) => ({
      path: args.importer,
      namespace: "addon-at-run-time",
    }));
    builder.onLoad({ filter: /.*/, namespace: "addon-at-run-time" }, (args) => {
      const addon = relative(root, requireHere("node-gyp-build").resolve(dirname(args.path)));
      if (addon.startsWith("..")) throw new Error(`a native addon outside the op tree: ${addon}`);
      return {
        loader: "js",
        contents: `module.exports = () => {
  let addon;
  const load = () => {
    if (!addon) {
      const module = { exports: {} };
      const root = process.env.OP_ROOT || ${JSON.stringify(root)};
      process.dlopen(module, require("node:path").join(root, ${JSON.stringify(addon)}));
      addon = module.exports;
    }
    return addon;
  };
  return new Proxy({}, { get: (_, name) => load()[name], has: (_, name) => name in load() });
};`,
      };
    });
  },
};

rmSync(blob, { force: true });
await build({
  entryPoints: [join(root, "dist", "src", "cli", "snapshot.js")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22",
  // ESM builds first: UMD builds (jsonc-parser's) require their parts dynamically.
  mainFields: ["module", "main"],
  plugins: [addonLoader],
  logLevel: "warning",
});
// A snapshot has no module loader at run time: an import() left in the bundle (a builtin
// imported dynamically, say) would fail only when that code path runs. Use
// process.getBuiltinModule for builtins instead.
const dynamicImport = /\bimport\(\s*["'`]/.exec(readFileSync(bundle, "utf8"));
if (dynamicImport) {
  throw new Error(`the snapshot bundle still imports a module dynamically (${dynamicImport[0]}…)`);
}
const built = spawnSync(node, ["--snapshot-blob", blob, "--build-snapshot", bundle], {
  cwd: root,
  encoding: "utf8",
});
if (built.status !== 0 || !existsSync(blob)) {
  process.stderr.write(built.stderr);
  throw new Error(`node --build-snapshot failed (${built.status}); op still runs without it`);
}
process.stdout.write(`snapshot: ${blob}\n`);
