/** The parts of the network query that are pure: the route dump cut into families. */
import { describe, expect, it } from "vitest";
import { type IpRoute, routesByFamily } from "./query.js";

// `ip -j -d route show table all type unicast` in a namespace with a policy-routing table,
// IPv4 and IPv6 defaults without a gateway, and the kernel's own routes (Linux 6.x, iproute2 6.1).
const dump: IpRoute[] = [
  {
    type: "unicast",
    dst: "10.50.0.0/16",
    gateway: "10.9.0.2",
    dev: "d0",
    table: "100",
    protocol: "boot",
  },
  { type: "unicast", dst: "default", dev: "d0", table: "main", protocol: "boot" },
  { type: "unicast", dst: "10.9.0.0/24", dev: "d0", table: "main", protocol: "kernel" },
  {
    type: "unicast",
    dst: "fd09::/64",
    dev: "d0",
    table: "main",
    protocol: "kernel",
    metric: 256,
    pref: "medium",
  },
  {
    type: "unicast",
    dst: "default",
    dev: "d0",
    table: "main",
    protocol: "boot",
    metric: 5,
    pref: "medium",
  },
  {
    type: "unicast",
    dst: "default",
    gateway: "fe80::1",
    dev: "d1",
    table: "main",
    protocol: "static",
    metric: 1024,
    pref: "medium",
  },
  {
    type: "unicast",
    dst: "default",
    gateway: "10.9.0.254",
    dev: "d0",
    table: "main",
    protocol: "static",
    metric: 10,
  },
];

describe("routesByFamily", () => {
  it("keeps the main table and tells the families apart, defaults included", () => {
    const families = routesByFamily(dump);
    const show = (routes: IpRoute[]) =>
      routes.map((r) => `${r.dst} ${r.gateway ?? "-"} ${r.metric ?? "-"}`);
    expect(show(families[4])).toEqual(["default - -", "10.9.0.0/24 - -", "default 10.9.0.254 10"]);
    expect(show(families[6])).toEqual(["fd09::/64 - 256", "default - 5", "default fe80::1 1024"]);
  });
});
