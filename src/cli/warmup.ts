/**
 * Work the startup snapshot does once at build time so that each run does not: V8 compiles a
 * function the first time it runs, and a function first run while the snapshot is built is
 * stored compiled, instead of compiling the schemas' validators and the plugins' read,
 * normalisation and diff at every start.
 *
 * Everything here is pure and synthetic: no process, file, socket, clock or environment
 * variable, so nothing of the build machine or of its moment ends up in the snapshot.
 */
import { memoDiff, prepareNetwork } from "../../plugins/network/prepare.js";
import {
  type IpRoute,
  parseLive,
  routesByFamily,
  splitJsonDocuments,
} from "../../plugins/network/query.js";
import { buildPlan } from "../engine/plan.js";
import type { NetworkSection } from "../generated/network.js";
import type { Action } from "../plugin.js";
import { pluginEntries } from "../registry.js";
import { validateState } from "../state/validate.js";

const bridges = 4;
const portsPerBridge = 3;

/** A state file in both network spellings, with every link type the plugin creates. */
function sampleState(): { version: number; plugins: Record<string, unknown> } {
  const interfaces: unknown[] = [];
  for (let b = 0; b < bridges; b++) {
    const ports = Array.from({ length: portsPerBridge }, (_, p) => `wv${b}p${p}`);
    interfaces.push({
      name: `wbr${b}`,
      type: "linux-bridge",
      mtu: 1500,
      ipv4: { addresses: [{ ip: `198.18.${b}.1`, prefix: 24 }] },
      ipv6: { addresses: [{ ip: `2001:db8:${b}::1`, prefix: 64 }] },
      bridge: { ports },
    });
    for (const port of ports) {
      interfaces.push({ name: port, type: "veth", veth: { peer: `${port}x` }, state: "up" });
    }
  }
  interfaces.push(
    { name: "wovs0", type: "ovs-bridge", ovs: { ports: [{ name: "wovs0i", tag: 10 }] } },
    { name: "wovs0i", type: "ovs-interface", state: "down" },
    { name: "wmv0", type: "macvlan", macvlan: { base: "wbr0", mode: "bridge" } },
    { name: "wdum0", type: "dummy", ensure: "absent" },
    { name: "wv9", type: "veth", veth: { peer: "wv9x" } },
    {
      name: "wbr9",
      type: "bridge",
      ports: ["wv9"],
      ipv4: { enabled: true, dhcp: false, address: [{ ip: "198.18.9.1", prefix: 24 }] },
    },
  );
  return {
    version: 1,
    plugins: {
      network: {
        interfaces,
        routes: [{ to: "203.0.113.0/24", via: "198.18.0.254", dev: "wbr0", metric: 10 }],
      },
    },
  };
}

/** What `ip -j -d addr show` and `ip -j route show` print for part of that state, as text. */
function sampleDump(): string {
  const links: unknown[] = [
    { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP"], mtu: 65536, link_type: "loopback" },
    { ifname: "wdum0", flags: ["UP"], mtu: 1500, ifalias: "op", linkinfo: { info_kind: "dummy" } },
  ];
  for (let b = 0; b < bridges; b++) {
    links.push({
      ifname: `wbr${b}`,
      flags: ["BROADCAST", "MULTICAST", "UP"],
      mtu: 1500,
      link_type: "ether",
      address: `02:00:00:00:0${b}:01`,
      ifalias: "op",
      linkinfo: { info_kind: "bridge", info_data: { stp_state: 0 } },
      addr_info: [
        { family: "inet", local: `198.18.${b}.1`, prefixlen: 24 },
        { family: "inet6", local: `fe80::${b}:1`, prefixlen: 64 },
      ],
    });
    for (let p = 0; p < portsPerBridge - 1; p++) {
      links.push({
        ifname: `wv${b}p${p}`,
        flags: ["BROADCAST", "MULTICAST"],
        mtu: 1500,
        link_type: "ether",
        address: `02:00:00:00:${b}${p}:02`,
        ifalias: "op",
        master: `wbr${b}`,
        link: `wv${b}p${p}x`,
        linkinfo: { info_kind: "veth", info_slave_kind: "bridge" },
        addr_info: [],
      });
    }
  }
  const routes = [
    { dst: "default", gateway: "198.18.0.254", dev: "wbr0", protocol: "static", flags: [] },
    { dst: "198.18.0.0/24", dev: "wbr0", protocol: "kernel", prefsrc: "198.18.0.1", flags: [] },
    { dst: "2001:db8:0::/64", dev: "wbr0", protocol: "kernel", metric: 256, pref: "medium" },
  ];
  return `${JSON.stringify(links)}\n${JSON.stringify(routes)}\n`;
}

/**
 * Runs a plan's pure half (validation, the network plugin's read, prepare and diff) once and
 * returns the actions it planned (a test checks that it plans all three kinds).
 */
export function warmUp(): Action[] {
  const state = sampleState();
  validateState(state, pluginEntries, "warm-up.json");
  const [addresses = [], routes = []] = splitJsonDocuments(sampleDump());
  const live = parseLive(addresses, routesByFamily(routes as IpRoute[]), {
    available: true,
    bridges: [],
  });
  const section = state.plugins.network as NetworkSection;
  const desired = prepareNetwork(section, live, { allowUplink: true });
  const actions = memoDiff(desired, live);
  buildPlan(actions, ["network"]);
  return actions;
}
