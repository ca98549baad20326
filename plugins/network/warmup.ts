/**
 * Plan fixtures the start-up snapshot's warm-up runs the plugin on (src/boot/warmup.ts):
 * between them they create, modify and delete links, addresses and routes. The first plans
 * against a recorded host (warm-up-host.json), which the plugin's own query reads, so that its
 * parsing of `ip` and OVSDB answers is compiled in the snapshot too.
 */

import type { WarmUpFixture } from "../../src/registry.js";
import driftSection from "./fixtures/drift-by-hand/section.json" with { type: "json" };
import pruneLive from "./fixtures/prune-and-absent/live.json" with { type: "json" };
import pruneSection from "./fixtures/prune-and-absent/section.json" with { type: "json" };
import recordedHost from "./warm-up-host.json" with { type: "json" };

export const warmUpFixtures: readonly WarmUpFixture[] = [
  { section: driftSection, host: recordedHost },
  { section: pruneSection, live: pruneLive },
];
