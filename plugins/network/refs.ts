/**
 * How other actions name the network plugin's resources in `needs` and `expects`
 * (src/plugin.ts ResourceRef): the only place that builds them, for this plugin and for
 * others (a container on a bridge needs the bridge, and the OVS database when the bridge may
 * be an OVS one).
 */
import type { ResourceRef } from "../../src/plugin.js";

export const networkPluginName = "network";

/** The link called `name`. */
export function linkRef(name: string): ResourceRef {
  return { plugin: networkPluginName, resource: "link", id: name };
}

/**
 * The Open vSwitch database: every OVS change of a run is one action on it. Its id has a
 * space, so no link name can be the same (the ledger names actions by plugin and id).
 */
export const ovsDatabaseRef: ResourceRef = {
  plugin: networkPluginName,
  resource: "ovs-db",
  id: "Open vSwitch",
};

/** A static route's id, `198.18.0.0/24 dev br0`; the IPv6 default route is `::/0`. */
export function routeId(route: { to: string; dev: string; family: 4 | 6 }): string {
  return `${route.to === "default" && route.family === 6 ? "::/0" : route.to} dev ${route.dev}`;
}
