/**
 * What `op watch` needs from the plugins and src/ may not import (src/layering.test.ts): the
 * event sources, given the ids the plugins spell (plugins/watch-ids.ts). Both entries hand it
 * to the CLI with the registry.
 */

import { watchSourceIds } from "../plugins/watch-ids.js";
import type { WatchSeams } from "../src/cli/watch.js";
import { sourcesFor } from "../src/watch/sources/index.js";

export const watchSeams: WatchSeams = {
  // The OVSDB source already names its hints with the network plugin's one Open vSwitch id.
  sources: (plugins, settings) => sourcesFor(plugins, { settings, ids: watchSourceIds }),
};
