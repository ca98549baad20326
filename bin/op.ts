#!/usr/bin/env node
/**
 * op's entry when it starts by loading its modules (scripts/op prefers the start-up snapshot,
 * bin/op-snapshot.ts): the composition root that hands the plugin registry to the CLI.
 */
import { main } from "../src/cli/main.js";

await main(process.argv.slice(2), async () => ({
  registry: (await import("../plugins/registry.js")).registry,
  seams: (await import("./watch-seams.js")).watchSeams,
}));
