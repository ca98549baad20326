/**
 * What a sysctl key may be, and what it says: the rules shared by check (the file alone),
 * diff and guard (the file against the host). Pure.
 */

/** One segment of a dotted key: `ipv4`, `ip_forward`, a link name such as `br-lan0`. */
const segmentPattern = /^[A-Za-z0-9_-]+$/;

/** The longest key accepted: far above any real one, short enough to print in an error. */
export const maxKeyLength = 255;

/** Why `key` is not a key this plugin manages (undefined when it is one). */
export function keyProblem(key: string): { message: string; hint?: string } | undefined {
  if (key.length > maxKeyLength) {
    return { message: `a sysctl key is at most ${maxKeyLength} characters` };
  }
  if (key.includes("/")) {
    return {
      message: "a sysctl key is written with dots, not `/`",
      hint: "write net.ipv4.ip_forward, not net/ipv4/ip_forward",
    };
  }
  const segments = key.split(".");
  if (segments[0] !== "net" || segments.length < 2) {
    return {
      message: "only kernel network parameters (keys under `net.`) are managed by op",
      hint: "set other sysctls with /etc/sysctl.d; this plugin keeps to what the network namespace owns",
    };
  }
  if (segments.some((segment) => segment === "")) {
    return { message: "a sysctl key has no empty segment (no `..`, no dot at either end)" };
  }
  const bad = segments.find((segment) => !segmentPattern.test(segment));
  if (bad !== undefined) {
    return {
      message: `segment "${bad}" may hold only letters, digits, \`_\` and \`-\``,
      hint: "spaces, shell characters and link names with a dot cannot be written as a sysctl key",
    };
  }
  return undefined;
}

/** Families and tables whose keys are per link: `net.ipv4.conf.br0.rp_filter`. */
const perLinkPattern = /^net\.(?:ipv4|ipv6|mpls)\.(?:conf|neigh)\.([^.]+)\.[^.]+$/;

/** The keys the kernel has for every namespace, never a link's. */
const notLinks = new Set(["all", "default"]);

/** The link a per-link key belongs to (`br0` in `net.ipv4.conf.br0.rp_filter`), if any. */
export function linkOf(key: string): string | undefined {
  const link = perLinkPattern.exec(key)?.[1];
  return link === undefined || notLinks.has(link) ? undefined : link;
}

/** Whether the live keys include any of `key`'s link directory (the link exists). */
export function linkDirectoryExists(key: string, live: Readonly<Record<string, string>>): boolean {
  const prefix = key.slice(0, key.lastIndexOf(".") + 1);
  return Object.keys(live).some((liveKey) => liveKey.startsWith(prefix));
}

/**
 * A value as the kernel prints it, for comparing: fields separated by one space (the kernel
 * prints tabs between the fields of `ip_local_port_range`; the file may use spaces).
 */
export function valueText(value: string | number): string {
  return String(value).trim().split(/\s+/).join(" ");
}

/** A number with a leading zero, which the kernel's integer parser reads as octal. */
export function looksOctal(value: string): boolean {
  return value.split(" ").some((field) => /^-?0\d+$/.test(field));
}
