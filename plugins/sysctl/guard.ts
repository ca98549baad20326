/**
 * A key the host does not have, reported at plan time with its path: a typo, a module not
 * loaded (br_netfilter for net.bridge.*), a link that neither exists nor is a link's key. Pure.
 */
import type { Action, Problem } from "../../src/plugin.js";
import { escapePointer } from "../../src/state/validate.js";
import { linkDirectoryExists, linkOf } from "./keys.js";
import type { SysctlLive } from "./types.js";

export function unknownKeyProblems(actions: readonly Action[], live: SysctlLive): Problem[] {
  return actions
    .filter((action) => action.kind === "create")
    .filter(({ id }) => linkOf(id) === undefined || linkDirectoryExists(id, live.values))
    .map(({ id }) => ({
      path: `/plugins/sysctl/settings/${escapePointer(id)}`,
      message: `the kernel of this network namespace has no sysctl ${id}`,
      hint: id.startsWith("net.bridge.")
        ? "net.bridge.* keys exist once the br_netfilter module is loaded (modprobe br_netfilter)"
        : "`sysctl net` lists the keys there are",
    }));
}
