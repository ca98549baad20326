/** The entry of op's start-up snapshot (src/boot/snapshot.ts), with op's plugins. */
import { registry } from "../plugins/registry.js";
import { buildStartupSnapshot } from "../src/boot/snapshot.js";
import { watchSeams } from "./watch-seams.js";

buildStartupSnapshot(registry, watchSeams);
