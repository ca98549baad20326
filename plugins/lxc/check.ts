/**
 * `op validate`'s checks of `plugins.lxc` beyond the schema, from the file alone (no host):
 * every entry normalised as prepare does it (op-dbus values that disagree, names and veth
 * names Incus or the kernel would refuse, ids outside the safe integers), ids, names and veths
 * used twice, mounts of host directories; and the properties op ignores, as warnings.
 */
import { resolve } from "node:path";
import { checkNetworks } from "./networks/check.js";
import { opDefaultDirectories } from "./paths.js";
import { checkEntries, fallbackImage, unusedProperties } from "./prepare.js";
import { checkRemote } from "./remote.js";
import type { LxcSection } from "./types.js";
import { checkVolumes } from "./volumes/check.js";

export function checkLxc(
  section: unknown,
  path: string,
  warn: (message: string) => void = () => {},
  opDirs: readonly string[] = opDefaultDirectories,
): string[] {
  const lxc = section as LxcSection;
  const problems = {
    lines: [] as string[],
    add(at: string, message: string) {
      this.lines.push(`${at}: ${message}`);
    },
  };
  // Relative mount sources are left as written: only prepare knows the state file's directory.
  checkEntries(lxc, path, fallbackImage, problems, {
    resolvePath: (source) => (source.startsWith("/") ? resolve(source) : source),
    opDirs,
  });
  checkNetworks(lxc, path, problems);
  checkVolumes(lxc, path, problems);
  problems.lines.push(...checkRemote(lxc, path));
  for (const message of unusedProperties(lxc, path)) warn(message);
  return problems.lines;
}
