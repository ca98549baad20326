/**
 * The network plugin's two views of the host: what the file asks for (normalised by prepare)
 * and what query read. Both are plain JSON so diff fixtures can hold them.
 */

import type { Interface } from "../../src/generated/network.js";
import type { Action, Adoption, Kind } from "../../src/plugin.js";

/** op's link types: the schema's, less the op-dbus spellings prepare translates. */
export type LinkType = Exclude<Interface["type"], "bridge" | "ovs-port">;

/** Links whose existence is an OVSDB row: OVS creates their netlink device. */
export const ovsTypes: ReadonlySet<string> = new Set<LinkType>(["ovs-bridge", "ovs-interface"]);

/** The ifalias marker of links op created; a user alias follows it after one space. */
export const ownerMarker = "op:network";
/** OVSDB rows op created carry these external_ids. */
export const ovsOwnerKeys = { managed: "op-managed", plugin: "op-plugin" } as const;

export interface DesiredLink {
  name: string;
  type: LinkType;
  /** undefined: op leaves the state alone (an ethernet link without `state`). */
  state?: "up" | "down";
  mtu?: number;
  /** Lower case. */
  mac?: string;
  /** The user's alias text (without op's marker). */
  alias?: string;
  /** "ip/prefix", canonical. undefined: not given (none, on links op owns); null: a DHCP client owns them. */
  ipv4?: string[] | null;
  ipv6?: string[] | null;
  /** The Linux bridge that lists this link as a port; null: it must be in none of the file's bridges. */
  master?: string | null;
  /** linux-bridge: ports that exist (or are created in this run); the others are pending. */
  ports?: string[];
  /**
   * linux-bridge: false when the file says `exclusive_ports: false`. Otherwise a link enslaved
   * by hand to a bridge op created is drift, and op takes it out.
   */
  exclusivePorts?: boolean;
  /** linux-bridge: ports the file does not list that may be on it (container veths). */
  guestPorts?: string[];
  veth?: { peer: string; netns?: string };
  macvlan?: { base: string; mode: string };
  /** veth declared as the peer of another declared veth: created by that one's action. */
  createdBy?: string;
}

export interface DesiredOvsPort {
  name: string;
  tag?: number;
  /** An OVS internal port (an ovs-interface in the file). */
  internal: boolean;
  mtu?: number;
  mac?: string;
}

export interface DesiredOvsBridge {
  name: string;
  datapath: "netdev" | "system";
  mtu?: number;
  mac?: string;
  ports: DesiredOvsPort[];
  /** false when the file says `exclusive_ports: false` (see DesiredLink). */
  exclusivePorts: boolean;
  /** Ports the file does not list that may be on it (container veths). */
  guestPorts: string[];
}

export interface DesiredRoute {
  /** CIDR (network form) or "default". */
  to: string;
  family: 4 | 6;
  via?: string;
  dev: string;
  /** Filled with the kernel's default (0 for IPv4, 1024 for IPv6). */
  metric: number;
}

export interface NetDesired {
  /** Links that must exist, in file order. */
  links: DesiredLink[];
  /** Names the file marks `ensure: absent`. */
  absent: string[];
  /** `prune: true`: links and OVS rows op created that left the file are deleted. */
  prune: boolean;
  ovs: DesiredOvsBridge[];
  routes: DesiredRoute[];
  /** Bridge ports that do not exist yet and are expected from another plugin (container veths). */
  pending: { bridge: string; port: string }[];
  /**
   * By link name, where the file names each link op may own (not an ethernet NIC) and whether
   * the entry adopts it: what a modify or delete of a link op did not create carries.
   */
  entries: Record<string, Adoption>;
}

export interface LiveLink {
  name: string;
  type: LinkType | "other";
  /** The netlink kind (`bridge`, `veth`, `tun`…; "" for a NIC). */
  kind: string;
  state: "up" | "down";
  mtu: number;
  mac: string;
  alias?: string;
  /** Carries op's marker in its ifalias, or (OVS) op's external_ids. */
  owned: boolean;
  ipv4: string[];
  ipv6: string[];
  master?: string;
  /** veth: the peer's name when it is in this namespace. */
  peer?: string;
  /** veth: the peer lives in another namespace. */
  peerElsewhere?: boolean;
  /** macvlan: the base link. */
  base?: string;
  mode?: string;
}

export interface LiveOvsPort {
  name: string;
  tag?: number;
  /** Interface type ("internal", "" for a system device…). */
  type: string;
  owned: boolean;
  mtu?: number;
  mac?: string;
  /** Why vswitchd could not attach it (e.g. the device does not exist yet). */
  error?: string;
}

export interface LiveOvsBridge {
  name: string;
  datapath: string;
  owned: boolean;
  mtu?: number;
  mac?: string;
  /** Without the bridge's own internal port. */
  ports: LiveOvsPort[];
}

export type LiveOvs =
  | { available: true; bridges: LiveOvsBridge[] }
  | { available: false; reason: string };

export interface LiveRoute {
  to: string;
  family: 4 | 6;
  via?: string;
  dev: string;
  metric: number;
  protocol: string;
}

export interface NetLive {
  links: LiveLink[];
  ovs: LiveOvs;
  /** Routes of the main table that are not the kernel's own. */
  routes: LiveRoute[];
  /**
   * The host's uplinks: links carrying a default route (IPv4 or IPv6), and the links under
   * them (ports of such a bridge, Linux or OVS, and the base of such a macvlan), since taking
   * one of those away cuts the route off as well.
   */
  uplinks: string[];
  /** Every default route of the main table, whoever added it (the kernel's RA ones too). */
  defaultRoutes: { dev: string; family: 4 | 6; metric: number }[];
}

/**
 * The payload of a link create: the desired link, its full ifalias, existing links to enrol,
 * and the state of a veth's peer the file does not declare (it follows the veth's).
 */
export interface LinkCreate {
  link: DesiredLink;
  ifalias?: string;
  enrol: string[];
  peerState?: "up" | "down";
}

/** The columns a new OVS bridge's row gets. */
export type NewOvsBridge = Pick<DesiredOvsBridge, "datapath" | "mtu" | "mac">;
/** A port the transaction adds, or moves here from bridge `from`. */
export type NewOvsPort = Omit<DesiredOvsPort, "name"> & { from?: string };

/**
 * One change of the `ovs-db` action, typed by the row it touches (`table`) and what it does
 * (`op`): add or remove a bridge or port, or set one field of it. `path` is how the plan and
 * the ledger show it: `bridge/B[/field]` or `port/B/P[/field]`.
 */
export type OvsChange =
  | { path: string; table: "bridge"; bridge: string; op: "add"; after: NewOvsBridge }
  | {
      path: string;
      table: "bridge";
      bridge: string;
      op: "remove";
      before: { datapath: string; ports: string[] };
    }
  | {
      path: string;
      table: "bridge";
      bridge: string;
      op: "set";
      /** `owner`: op's external_ids put on a bridge it did not create (adopting it). */
      field: "datapath" | "mtu" | "mac" | "owner";
      before?: string | number;
      after?: string | number;
    }
  | { path: string; table: "port"; bridge: string; port: string; op: "add"; after: NewOvsPort }
  | { path: string; table: "port"; bridge: string; port: string; op: "remove"; before: LiveOvsPort }
  | {
      path: string;
      table: "port";
      bridge: string;
      port: string;
      op: "set";
      /** `owner`: op's external_ids put on a port it did not create (adopting it). */
      field: "tag" | "internal" | "mtu" | "mac" | "owner";
      before?: string | number | boolean;
      after?: string | number | boolean;
    };

/**
 * The network plugin's resource kinds (src/plugin.ts): a link (id: its name), a static route
 * (id: `198.18.0.0/24 dev br0`) and the Open vSwitch database, changed by one transaction.
 */
export type NetworkKinds = {
  link: Kind<DesiredLink, LiveLink, LinkCreate>;
  route: Kind<DesiredRoute, LiveRoute>;
  /** Only ever modified: one transaction of typed changes. */
  "ovs-db": Kind<DesiredOvsBridge[], LiveOvsBridge[], never, never, OvsChange>;
};

/** An action of the network plugin. */
export type NetworkAction = Action<NetworkKinds>;
