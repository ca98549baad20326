#!/usr/bin/env node
/**
 * Builds op's V8 startup snapshot, dist/op.blob (see src/boot/snapshot.ts for why), from the
 * compiled JavaScript in dist/: esbuild bundles dist/bin/op-snapshot.js and all it imports
 * into one CommonJS script (node builds a snapshot from a single script), then the Node that
 * scripts/op runs executes it with --build-snapshot. A blob only fits the node binary that
 * built it, so it is rebuilt with every build (npm run build; setup.sh builds after installs).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
 * (classic-level and abstract-level, compiled at every run that opens the ledger) is
 * bundled, and only its addon is loaded at run time, on the first call into it.
 * node-gyp-build, which finds the addon for this platform next to its package, runs here, at
 * build time (the blob is for this machine's node anyway), and the bundle keeps only the
 * addon's path within the op tree: at run time it is process.dlopen'ed from OP_ROOT (which
 * scripts/op sets, so that a moved tree still finds it; else where it was built). Loading it
 * through node:module instead loaded more of Node's own modules at each run.
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
/**
 * rxjs's package sends Node to its CommonJS build, which esbuild cannot tree-shake: the bundle
 * would carry every operator. Its ES module build keeps only what the engine imports.
 */
const rxjsAsModules = {
  name: "rxjs-as-modules",
  setup(builder) {
    builder.onResolve({ filter: /^rxjs$/ }, () => ({
      path: join(root, "node_modules", "rxjs", "dist", "esm", "index.js"),
    }));
  },
};

await build({
  entryPoints: [join(root, "dist", "bin", "op-snapshot.js")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22",
  // ESM builds first: UMD builds (jsonc-parser's) require their parts dynamically.
  mainFields: ["module", "main"],
  plugins: [addonLoader, rxjsAsModules],
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

/**
 * Node appends to every blob a code cache for all ~390 of its builtin modules (~4 MB), which
 * each start reads and copies. op's commands run
 * the builtins already in the heap, so the cache serves only the few loaded late (worker_threads
 * for a large verify), which then compile from source. Node's own switch for this,
 * `withoutCodeCache`, also drops the compiled code of op's functions (V8's kClear), which costs
 * more at run time than it saves; so the cache is cut here instead.
 *
 * It is the blob's last field: a 64-bit count, then per builtin a 64-bit length and its id, a
 * 64-bit length and the cache. Its start is the one offset from which exactly such a list, of
 * module ids, runs to the end of the file; it becomes an empty list. A blob whose layout is not
 * that (another Node), or whose cut copy does not answer like the whole one, stays whole.
 */
function withoutBuiltinCodeCache(whole) {
  const listAt = (start) => {
    let at = start;
    const count = Number(whole.readBigUInt64LE(at));
    at += 8;
    const ids = [];
    for (let entry = 0; entry < count; entry++) {
      if (at + 8 > whole.length) return undefined;
      const idLength = Number(whole.readBigUInt64LE(at));
      if (idLength === 0 || idLength > 128 || at + 8 + idLength + 8 > whole.length)
        return undefined;
      const id = whole.toString("latin1", at + 8, at + 8 + idLength);
      if (!/^[\w./:-]+$/.test(id)) return undefined;
      ids.push(id);
      at += 8 + idLength;
      at += 8 + Number(whole.readBigUInt64LE(at));
      if (at > whole.length) return undefined;
    }
    return at === whole.length ? ids : undefined;
  };
  for (let start = 0; start + 8 <= whole.length; start++) {
    // A plausible count (Node has some hundreds of builtins) before trying to walk the list.
    const count = whole.readUInt32LE(start);
    if (count < 50 || count > 5000 || whole.readUInt32LE(start + 4) !== 0) continue;
    const ids = listAt(start);
    if (ids?.includes("fs") && ids.includes("path")) {
      return Buffer.concat([whole.subarray(0, start), Buffer.alloc(8)]);
    }
  }
  return undefined;
}

const answer = (file) =>
  spawnSync(node, ["--snapshot-blob", file, "--", "--help"], { cwd: root, encoding: "utf8" });
const cut = withoutBuiltinCodeCache(readFileSync(blob));
if (cut === undefined) {
  process.stdout.write("snapshot: Node's code cache not found in the blob; kept whole\n");
} else {
  const trial = `${blob}.cut`;
  writeFileSync(trial, cut);
  const [whole, trimmed] = [answer(blob), answer(trial)];
  if (trimmed.status === 0 && trimmed.stdout === whole.stdout && whole.stdout.length > 0) {
    renameSync(trial, blob);
  } else {
    rmSync(trial, { force: true });
    process.stdout.write("snapshot: the blob without Node's code cache misbehaved; kept whole\n");
  }
}
process.stdout.write(`snapshot: ${blob}\n`);
