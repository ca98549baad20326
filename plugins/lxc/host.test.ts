/**
 * What the lxc plugin reads of a running container from the host's files (ctx.host.sys), on a
 * fixture tree laid out as the host's: its host veth and bridge, a veth renamed by hand (found
 * through the index the container's own sysfs gives), whether its eth0 is up, its addresses.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createSys } from "../../src/host/sys.js";
import { fixtureTree } from "../../src/host/testing.js";
import { linuxBridges } from "./host.js";
import { liveContainer } from "./query.js";

const fibTrie = `Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 198.18.0.0/15 2 0 2
           |-- 198.18.7.10
              /32 host LOCAL
           |-- 198.18.7.255
              /32 link BROADCAST
`;
const ifInet6 = [
  "00000000000000000000000000000001 01 80 10 80       lo",
  "20010db8000000000000000000000007 04 40 00 80     eth0",
  "fe8000000000000000fc00fffe000001 04 40 20 80     eth0",
].join("\n");

const root = fixtureTree(
  {
    "/sys/class/net/opbr0/ifindex": "7\n",
    "/sys/class/net/opbr0/bridge/forward_delay": "0\n",
    "/sys/class/net/vi100/ifindex": "12\n",
    "/sys/class/net/byhand0/ifindex": "31\n",
    "/sys/fs/cgroup/lxc.payload.ct100/cgroup.procs": "4242\n",
    "/sys/fs/cgroup/lxc.payload.ct101/cgroup.procs": "5151\n",
    "/proc/4242/root/sys/class/net/eth0/iflink": "12\n",
    "/proc/4242/root/sys/class/net/eth0/flags": "0x1003\n",
    "/proc/4242/net/fib_trie": fibTrie,
    "/proc/4242/net/if_inet6": ifInet6,
    "/proc/5151/root/sys/class/net/eth0/iflink": "31\n",
    "/proc/5151/root/sys/class/net/eth0/flags": "0x1002\n",
  },
  {
    "/sys/class/net/vi100/master": "../../../devices/virtual/net/opbr0",
    "/sys/class/net/byhand0/master": "../../../devices/virtual/net/opbr0",
  },
);
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sys = createSys(root);

const running = (name: string, hostName: string) => ({
  name,
  type: "container",
  status: "Running",
  architecture: "x86_64",
  ephemeral: false,
  stateful: false,
  description: "",
  profiles: ["default"],
  config: { "volatile.eth0.host_name": hostName },
  devices: { eth0: { type: "nic", nictype: "bridged", parent: "opbr0" } },
});

describe("a running container as the host's files show it (fixture tree)", () => {
  it("has the veth Incus recorded, its bridge, its link state and its addresses", () => {
    const live = liveContainer(running("ct100", "vi100"), sys);
    expect(live.veth).toBe("vi100");
    expect(live.master).toBe("opbr0");
    expect(live.nicUp).toBe(true);
    // IPv6 as ipv6Globals writes it today: groups without leading zeros, not compressed.
    expect(live.addresses).toEqual(["198.18.7.10", "2001:db8:0:0:0:0:0:7"]);
  });

  it("finds a veth renamed by hand through the index its container's sysfs gives", () => {
    const live = liveContainer(running("ct101", "vi101"), sys);
    expect(live.veth).toBe("byhand0");
    expect(live.master).toBe("opbr0");
    expect(live.nicUp).toBe(false);
    expect(live.addresses).toEqual([]);
  });

  it("lists the Linux bridges as such", () => {
    expect(linuxBridges(sys)).toEqual({ opbr0: "linux" });
  });
});
