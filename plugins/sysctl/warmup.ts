/**
 * The plan fixture the start-up snapshot's warm-up runs the plugin on (src/boot/warmup.ts):
 * a modify and a create (a link's key whose link is still to come).
 */
import type { WarmUpFixture } from "../../src/registry.js";
import live from "./fixtures/drift-and-link-to-come/live.json" with { type: "json" };
import section from "./fixtures/drift-and-link-to-come/section.json" with { type: "json" };

export const warmUpFixtures: readonly WarmUpFixture[] = [{ section, live }];
