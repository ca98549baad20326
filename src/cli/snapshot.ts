/**
 * The entry of op's V8 startup snapshot. scripts/snapshot.mjs bundles this file into one
 * script and has node build `dist/op.blob` from it; scripts/op then starts node from that blob.
 *
 * Why: loading op's modules (commander, ajv's validators, the plugins, node:crypto…) took as
 * long as a converged `op plan`'s own work at every start. Here they are evaluated once, at build time, and a start only deserializes the heap.
 * What cannot be in a snapshot stays out: LevelDB's native addon is required when the ledger
 * is first used, and builtins first needed late (node:http, node:crypto) come from
 * `process.getBuiltinModule`, since a dynamic import() has no loader to run on here.
 */
import { startupSnapshot } from "node:v8";
// Everything a command may load lazily is evaluated now, so that no run loads it again.
import "../engine/dag.js";
import "../ledger/index.js";
import "../../plugins/lxc/index.js";
import "../../plugins/network/index.js";
import "../../plugins/nftables/index.js";
import "./commands.js";
import "./doctor.js";
import { exitWith, prepareCli } from "./run.js";
import { warmUp } from "./warmup.js";

if (!startupSnapshot.isBuildingSnapshot()) {
  throw new Error("snapshot.ts is the entry of `node --build-snapshot`, not a program to run");
}
// The command line's definition is built here, at build time, like the modules, and the
// functions every plan runs are compiled by running them once (warmup.ts).
const runCli = prepareCli();
warmUp();
startupSnapshot.setDeserializeMainFunction(async () => {
  // Started as `node --snapshot-blob op.blob -- ARGS`: argv is [node, ...ARGS].
  exitWith(await runCli(process.argv.slice(1)));
});
