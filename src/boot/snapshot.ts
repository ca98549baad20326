/**
 * The start-up snapshot: bin/op-snapshot.ts (the entry of `node --build-snapshot`, built by
 * scripts/snapshot.mjs into dist/op.blob) calls this with the plugin registry; scripts/op
 * then starts node from that blob.
 *
 * Why: loading op's modules (commander, ajv's validators, the plugins, node:crypto…) took as
 * long as a converged `op plan`'s own work at every start. Here they are evaluated once, at
 * build time, and a start only deserializes the heap. What cannot be in a snapshot stays out:
 * LevelDB's native addon is required when the ledger is first used, and builtins first needed
 * late (node:http, node:crypto) come from `process.getBuiltinModule`, since a dynamic import()
 * has no loader to run on here.
 */
import { startupSnapshot } from "node:v8";
// Everything a command may load lazily is evaluated now, so that no run loads it again.
import "../engine/dag.js";
import "../ledger/index.js";
import "../cli/commands.js";
import "../cli/doctor.js";
import "../cli/watch.js";
import { exitWith, prepareCli } from "../cli/run.js";
import type { WatchSeams } from "../cli/watch.js";
import type { PluginRegistry } from "../registry.js";
import { warmUp } from "./warmup.js";

export function buildStartupSnapshot(registry: PluginRegistry, seams?: WatchSeams): void {
  if (!startupSnapshot.isBuildingSnapshot()) {
    throw new Error("the snapshot entry is for `node --build-snapshot`, not a program to run");
  }
  // The command line's definition is built here, at build time, like the modules; every
  // plugin is loaded and the functions every plan runs are compiled by running them once.
  const runCli = prepareCli(registry, seams);
  void Promise.all([registry.load(), warmUp(registry)]).catch((error: unknown) => {
    // A warm-up that fails is a bug the build must not hide.
    process.stderr.write(`snapshot warm-up failed: ${String(error)}\n`);
    process.exitCode = 1;
  });
  startupSnapshot.setDeserializeMainFunction(async () => {
    // Started as `node --snapshot-blob op.blob -- ARGS`: argv is [node, ...ARGS].
    exitWith(await runCli(process.argv.slice(1)));
  });
}
