/** Incus managed networks: what the file asks for and what the host has. */
export type { LxcNetworkSpec } from "../../../src/generated/lxc.js";

import type { LiveObject } from "../objects.js";

/** The one network type op manages for now. */
export const networkType = "bridge";

/** The typed fields of a network entry and the Incus key each one sets. */
export const networkKeys = {
  ipv4_address: "ipv4.address",
  ipv4_nat: "ipv4.nat",
  ipv4_dhcp: "ipv4.dhcp",
  ipv6_address: "ipv6.address",
  dns_domain: "dns.domain",
} as const;

export interface DesiredNetwork {
  name: string;
  project: string;
  /** JSON path of the entry, for messages. */
  path: string;
  ensure: "present" | "absent";
  /** The entry says `adopt: true`: op may change or delete it although it did not create it. */
  adopt: boolean;
  type: typeof networkType;
  /** Given only when the file gives it. */
  description?: string;
  /** The keys the file gives and op's ownership tag (left out of a change to one op did not create). */
  config: Record<string, string>;
  /** The JSON path that gives each key of `config`, for messages. */
  paths: Record<string, string>;
}

export interface LiveNetwork extends LiveObject {
  name: string;
  type: string;
  /** Incus's own `volatile.*` keys, kept apart from `config`. */
  volatile: Record<string, string>;
}
