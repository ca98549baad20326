/**
 * The sysctl plugin: kernel network parameters (net.*) kept at the file's values. The example
 * plugin of docs/plugins.md: a file per phase of the contract (src/plugin.ts), the key rules in
 * keys.ts and its one contact with the kernel in procsys.ts.
 */
import { byCodeUnit } from "../../src/order.js";
import type { LiveReport, Plugin } from "../../src/plugin.js";
import { applySysctl } from "./apply.js";
import { checkSysctl } from "./check.js";
import { diffSysctl } from "./diff.js";
import { unknownKeyProblems } from "./guard.js";
import { valueText } from "./keys.js";
import { sysctlImage, sysctlScope } from "./preimage.js";
import { querySysctl } from "./query.js";
import type { SysctlDesired, SysctlKinds, SysctlLive, SysctlSection } from "./types.js";

export type { SysctlDesired, SysctlLive } from "./types.js";

/** The file's settings in key order, values as text. Pure. */
export function normaliseSysctl(section: unknown): SysctlDesired {
  const settings = Object.entries((section as SysctlSection | undefined)?.settings ?? {})
    .flatMap(([key, value]) => (value === undefined ? [] : [{ key, value: valueText(value) }]))
    .sort((a, b) => byCodeUnit(a.key, b.key));
  return { settings };
}

export function reportSysctl(live: SysctlLive): LiveReport {
  return {
    columns: ["key", "value"],
    rows: Object.entries(live.values).map(([key, value]) => [key, valueText(value)]),
  };
}

export const sysctlPlugin: Plugin<SysctlDesired, SysctlLive, SysctlDesired, SysctlKinds> = {
  name: "sysctl",
  resources: { parameter: "a kernel parameter under net., set to the file's value" },
  check: checkSysctl,
  query: querySysctl,
  normalise: async (section) => normaliseSysctl(section),
  // Nothing of the host changes what the file asks for.
  resolve: (normalised) => normalised,
  diff: diffSysctl,
  guard: (actions, live) => unknownKeyProblems(actions, live),
  apply: applySysctl,
  report: reportSysctl,
  // A value carries no owner mark, and every net.* key has one (most the kernel's defaults):
  // an export of them all would pin the kernel's defaults, so none is exported, even with --all.
  exportSection: () => ({
    section: undefined,
    notes: [
      "not exported: a kernel setting has no owner mark, so op cannot tell the keys it set from the kernel's defaults; list the keys you mean under plugins.sysctl.settings",
    ],
  }),
  imageScope: sysctlScope,
  image: sysctlImage,
};
