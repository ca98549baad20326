/**
 * Address and CIDR helpers shared by query (reading the kernel's forms) and prepare (reading
 * the file's), so both sides compare in one canonical spelling.
 */
import { isIPv4, isIPv6 } from "node:net";

/** The kernel's spelling of an address (IPv6 compressed, lower case). */
export function canonicalIp(ip: string): string {
  // Only IPv6 has other spellings; the colon test spares the common IPv4 case a parse. The URL
  // parser both checks and compresses, so net.isIPv6's large regex (several ms to compile on a
  // cold start) is not needed here.
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

export function familyOf(ip: string): 4 | 6 | undefined {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  return undefined;
}

/** Splits "ip/prefix" (a missing prefix means a host route). Undefined when malformed. */
export function parseCidr(text: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  const [ip, prefixText, extra] = text.split("/");
  if (ip === undefined || extra !== undefined) return undefined;
  const family = familyOf(ip);
  if (family === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { ip: canonicalIp(ip), prefix, family };
}

/** Whether an address has bits set beyond its prefix (a route's destination must not). */
export function hasHostBits(ip: string, prefix: number): boolean {
  const bits = toBits(ip);
  return bits.slice(prefix).includes("1");
}

/** IPv6 link-local (fe80::/10): added by the kernel, never op's. */
export function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

function toBits(ip: string): string {
  if (isIPv4(ip)) {
    return ip
      .split(".")
      .map((octet) => Number(octet).toString(2).padStart(8, "0"))
      .join("");
  }
  const [head = "", tail = ""] = ip.split("::");
  const groups = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = groups(tail);
  const fill = ip.includes("::") ? Array(8 - left.length - right.length).fill("0") : [];
  return [...left, ...fill, ...right]
    .map((group) => Number.parseInt(group, 16).toString(2).padStart(16, "0"))
    .join("");
}
