/**
 * Which host directories a container may mount read-write and which op may remove when a
 * container with `preserve: false` mounts goes. Pure: callers resolve paths (realpath) first.
 */
import { isAbsolute, resolve } from "node:path";

/** Trees the host needs to run: nothing in, at or above them is removed or mounted rw freely. */
export const criticalTrees: readonly string[] = [
  "/etc",
  "/root",
  "/boot",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/proc",
  "/sys",
  "/dev",
  "/run",
  "/var/lib/incus",
];

/** Directories that hold everyone's data: never removed, nor any of their parents. */
export const sharedDirectories: readonly string[] = [
  "/",
  "/home",
  "/srv",
  "/opt",
  "/tmp",
  "/mnt",
  "/media",
  "/var",
  "/var/lib",
  "/var/log",
  "/var/cache",
  "/var/tmp",
];

/**
 * op's own directories when nothing moves them (ledger, key, lock, cache). The callers add the
 * paths the environment gives, files included: a file counts as a tree of one.
 */
export const opDefaultDirectories: readonly string[] = [
  "/var/lib/op",
  "/etc/op",
  "/run/op",
  "/var/cache/op",
];

/** `path` is `dir` or inside it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/** A path of the file, taken from the state file's directory when relative. */
export function resolveFromStateDir(path: string, stateDir: string | undefined): string {
  return isAbsolute(path) ? resolve(path) : resolve(stateDir ?? process.cwd(), path);
}

/**
 * Why mounting `source` read-write exposes the host (it is, holds or lies in a tree the host
 * needs), or undefined when it does not.
 */
export function hostPathExposure(source: string, opDirs: readonly string[]): string | undefined {
  for (const tree of [...criticalTrees, ...opDirs]) {
    if (isWithin(source, tree)) return source === tree ? `it is ${tree}` : `it is inside ${tree}`;
    if (isWithin(tree, source)) return `it holds ${tree}`;
  }
  return undefined;
}

/** What else is mounted on the host: another instance's disk sources (realpaths). */
export interface OtherMount {
  instance: string;
  source: string;
}

/**
 * Why op must not remove `dir` (a realpath), or undefined when it may: a directory the host
 * or op needs, one that holds everyone's data, or one at or above another instance's mount.
 */
export function removalRefusal(
  dir: string,
  opDirs: readonly string[],
  others: readonly OtherMount[],
): string | undefined {
  if (!isAbsolute(dir)) return `${dir} is not an absolute path`;
  const exposure = hostPathExposure(dir, opDirs);
  if (exposure !== undefined) return `${dir} is a system directory (${exposure})`;
  const shared = sharedDirectories.find((shared) => isWithin(shared, dir));
  if (shared !== undefined)
    return `${dir} is a system directory (${shared === dir ? `it is ${dir}` : `it holds ${shared}`})`;
  const other = others.find((mount) => isWithin(mount.source, dir));
  if (other !== undefined)
    return `${dir} ${other.source === dir ? "is" : "holds"} a mount of ${other.instance} (${other.source})`;
  return undefined;
}

/** Bytes in a human's words: 512 B, 4.0 KiB, 1.2 GiB. */
export function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
