/** Builders the network plugin's unit tests share. */
import type { LiveLink } from "./types.js";

/** A live link as query reports it: an unowned veth that is up, unless `fields` say otherwise. */
export function liveLink(name: string, fields: Partial<LiveLink> = {}): LiveLink {
  return {
    name,
    type: "veth",
    kind: "veth",
    state: "up",
    mtu: 1500,
    mac: "02:00:00:00:00:01",
    owned: false,
    ipv4: [],
    ipv6: [],
    ...fields,
  };
}
