/**
 * Pre-images for sysctl (src/plugin.ts imageScope, image): each key a run sets, with the value
 * the kernel had, under `settings`; an undo is the plugin's usual write of those values. A key
 * the run creates is a link's key that appeared with its link in the same run: it has no value
 * before, and it goes when the network plugin's undo deletes the link, so it is left out.
 * (The plugin's export writes nothing, as it cannot tell op's keys from the kernel's defaults;
 * here the run's own actions say which keys are op's.)
 */
import type { ResourceImage } from "../../src/plugin.js";
import { valueText } from "./keys.js";
import type { SysctlAction, SysctlLive } from "./types.js";

/** The keys an undo sets back. */
export interface SysctlScope {
  keys: string[];
}

/** Pure: the keys the actions modify. */
export function sysctlScope(actions: readonly SysctlAction[]): SysctlScope {
  return { keys: actions.filter((action) => action.kind === "modify").map((action) => action.id) };
}

/** The scope's keys with the values `live` has; a key it lacks is left out (see above). */
export function sysctlImage(scope: unknown, live: SysctlLive): ResourceImage {
  const settings: Record<string, string> = {};
  for (const key of (scope as SysctlScope).keys) {
    const value = live.values[key];
    if (value !== undefined) settings[key] = valueText(value);
  }
  return { section: Object.keys(settings).length === 0 ? undefined : { settings }, refused: [] };
}
