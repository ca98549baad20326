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
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = join(root, "dist", "op-snapshot.cjs");
const blob = join(root, "dist", "op.blob");
const projectNode = join(root, "node_modules", "node", "bin", "node");
const node = existsSync(projectNode) ? projectNode : process.execPath;

/**
 * Packages with native addons cannot be in a snapshot: each becomes a stub that requires the
 * real package when first used, at run time, from the op tree (OP_ROOT, which scripts/op sets,
 * so that a moved tree still finds it; else where it was built).
 */
const loadedAtRunTime = ["level"];
const runTimeRequire = {
  name: "run-time-require",
  setup(builder) {
    const filter = new RegExp(`^(${loadedAtRunTime.join("|")})$`);
    builder.onResolve({ filter }, (args) => ({ path: args.path, namespace: "run-time" }));
    builder.onLoad({ filter: /.*/, namespace: "run-time" }, (args) => ({
      loader: "js",
      contents: `const { createRequire } = require("node:module");
const from = require("node:path").join(process.env.OP_ROOT || ${JSON.stringify(root)}, "package.json");
module.exports = createRequire(from)(${JSON.stringify(args.path)});`,
    }));
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
  plugins: [runTimeRequire],
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
