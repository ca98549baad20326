/**
 * Plan fixtures the start-up snapshot's warm-up runs the plugin on (src/boot/warmup.ts):
 * between them they create, modify and delete links, addresses and routes.
 */

import type { WarmUpFixture } from "../../src/registry.js";
import driftLive from "./fixtures/drift-by-hand/live.json" with { type: "json" };
import driftSection from "./fixtures/drift-by-hand/section.json" with { type: "json" };
import pruneLive from "./fixtures/prune-and-absent/live.json" with { type: "json" };
import pruneSection from "./fixtures/prune-and-absent/section.json" with { type: "json" };

export const warmUpFixtures: readonly WarmUpFixture[] = [
  { section: driftSection, live: driftLive },
  { section: pruneSection, live: pruneLive },
];
