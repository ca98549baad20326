/**
 * The file against the host, purely. A key whose value differs is modified, with the value it
 * had in `before` (so the ledger keeps what op replaced); a key the host does not have yet is
 * created (guard.ts refuses it unless it is a link's key and the link is still to come). A key
 * taken out of the file is not in `desired` at all: op leaves its value as it is.
 */
import { linkRef } from "../network/refs.js";
import { linkOf, valueText } from "./keys.js";
import type { SysctlAction, SysctlDesired, SysctlLive } from "./types.js";

const plugin = "sysctl";

export function diffSysctl(desired: SysctlDesired, live: SysctlLive): SysctlAction[] {
  const actions: SysctlAction[] = [];
  for (const { key, value } of desired.settings) {
    const current = live.values[key];
    if (current === undefined) {
      const link = linkOf(key);
      actions.push({
        kind: "create",
        plugin,
        resource: "parameter",
        id: key,
        after: { value },
        reason: link === undefined ? "not on the host" : `set once link ${link} exists`,
        // The link's key appears when the network plugin has made the link, earlier in the run.
        ...(link === undefined ? {} : { expects: [linkRef(link)] }),
      });
    } else if (valueText(current) !== value) {
      const before = valueText(current);
      actions.push({
        kind: "modify",
        plugin,
        resource: "parameter",
        id: key,
        before: { value: before },
        after: { value },
        changes: [{ path: "value", before, after: value }],
        reason: "value differs from the file",
      });
    }
  }
  return actions;
}
