/**
 * The kernel's files read under a fixture root laid out as the host's: links in
 * /sys/class/net (a bridge, its port, a renamed veth), a container's cgroup and its /proc.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createSys, sameNamespace } from "./sys.js";
import { fixtureTree } from "./testing.js";

const root = fixtureTree(
  {
    "/sys/class/net/opbr0/ifindex": "7\n",
    "/sys/class/net/opbr0/bridge/forward_delay": "0\n",
    "/sys/class/net/vi100/ifindex": "12\n",
    "/sys/class/net/renamed0/ifindex": "31\n",
    "/sys/fs/cgroup/lxc.payload.ct100/cgroup.procs": "4242\n4243\n",
    "/proc/4242/net/if_inet6": "",
    "/proc/4242/ns/net": "",
    "/proc/self/ns/net": "",
    "/run/netns/opt-a": "",
    "/var/run/openvswitch/ovs-vswitchd.pid": "99\n",
  },
  { "/sys/class/net/vi100/master": "../../../devices/virtual/net/opbr0" },
);
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sys = createSys(root);

describe("createSys on a fixture tree", () => {
  it("reads links, their bridge, and the Linux bridges", () => {
    expect(sys.link("vi100")).toEqual({ name: "vi100", master: "opbr0" });
    expect(sys.link("opbr0")).toEqual({ name: "opbr0" });
    expect(sys.link("nope")).toBeUndefined();
    expect(sys.linuxBridges()).toEqual(["opbr0"]);
    expect(sys.linkNameByIndex(31)).toBe("renamed0");
    expect(sys.linkNameByIndex(1000)).toBeUndefined();
  });

  it("never leaves the directory of links for a name that is not one", () => {
    for (const name of ["", ".", "..", "../../proc", "a/b"]) expect(sys.link(name)).toBeUndefined();
    expect(sys.containerPid("../x")).toBeUndefined();
  });

  it("finds a container's init through its cgroup and reads its /proc", () => {
    expect(sys.containerPid("ct100")).toBe(4242);
    expect(sys.containerPid("ct101")).toBeUndefined();
    expect(sys.procText(4242, "net/if_inet6")).toBe("");
    expect(sys.procText(4242, "net/fib_trie")).toBe("");
    expect(sys.text("/var/run/openvswitch/ovs-vswitchd.pid")).toBe("99\n");
    expect(sys.exists("/run/netns/opt-a")).toBe(true);
    expect(sys.exists("/run/netns/opt-b")).toBe(false);
  });

  it("tells namespaces apart by device and inode", () => {
    const self = sys.netnsOfProcess("self");
    const named = sys.namedNetns("opt-a");
    expect(self).toBeDefined();
    expect(named).toBeDefined();
    if (self === undefined || named === undefined) return;
    expect(sameNamespace(self, self)).toBe(true);
    expect(sameNamespace(self, named)).toBe(false);
    expect(sys.netnsOfProcess(99)).toBeUndefined();
  });

  it("reads the host itself with the default root", () => {
    const host = createSys();
    expect(host.root).toBe("/");
    expect(host.link("lo")).toEqual({ name: "lo" });
    expect(host.netnsOfProcess("self")).toBeDefined();
  });
});
