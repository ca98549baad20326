/**
 * The Open vSwitch model's pure parts and what it reads of the host's files, on a fixture
 * tree (ovs-vswitchd's pid file, its namespace and op's). test/host.ovs.test.ts runs the model
 * against the real ovsdb-server and ovs-vswitchd.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createOvsHost, topologyOf } from "./ovs.js";
import { createSys } from "./sys.js";
import { fixtureTree } from "./testing.js";

describe("reach: whether Open vSwitch is in op's namespace", () => {
  // pid 10 shares op's namespace (the same file: a symlink), pid 20 has another one; pid 30
  // wrote a pid file and is gone.
  const root = fixtureTree(
    {
      "/proc/self/ns/net": "",
      "/proc/20/ns/net": "",
      "/run/netns/opt-x": "",
      "/ovs/here/ovs-vswitchd.pid": "10\n",
      "/ovs/there/ovs-vswitchd.pid": "20\n",
      "/ovs/gone/ovs-vswitchd.pid": "30\n",
    },
    { "/proc/10/ns/net": "../../self/ns/net" },
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const sys = createSys(root);
  const at = (runDir: string) => createOvsHost({ runDir }, sys);

  it("is here when ovs-vswitchd runs in op's namespace", () => {
    expect(at("/ovs/here").reach(undefined)).toEqual({ here: true });
  });

  it("says why not: another namespace, no pid file, a pid that is gone", () => {
    expect(at("/ovs/there").reach(undefined)).toEqual({
      here: false,
      reason: "Open vSwitch runs in another network namespace than the one op works in",
    });
    // op working in a named namespace is not where ovs-vswitchd runs.
    expect(at("/ovs/here").reach("opt-x")).toMatchObject({ here: false });
    expect(at("/ovs/none").reach(undefined)).toEqual({
      here: false,
      reason: "ovs-vswitchd is not running (no pid file in /ovs/none)",
    });
    expect(at("/ovs/gone").reach(undefined)).toEqual({
      here: false,
      reason: "ovs-vswitchd is not running (pid 30 is gone)",
    });
  });

  it("has no topology and is not present when the run directory has no socket", async () => {
    const ovs = at("/ovs/here");
    expect(ovs.present()).toBe(false);
    expect(await ovs.topology()).toBeUndefined();
  });
});

describe("topologyOf", () => {
  it("gives each port its bridge, leaving out a bridge's own internal port", () => {
    const topology = topologyOf({
      Bridge: [
        {
          name: "br0",
          ports: [
            "set",
            [
              ["uuid", "p0"],
              ["uuid", "p1"],
            ],
          ],
        },
        { name: "br1", ports: ["uuid", "p2"] },
        { name: "br2", ports: ["set", []] },
      ],
      Port: [
        { _uuid: ["uuid", "p0"], name: "br0" },
        { _uuid: ["uuid", "p1"], name: "vi100" },
        { _uuid: ["uuid", "p2"], name: "vi101" },
      ],
    });
    expect(topology.bridges).toEqual(["br0", "br1", "br2"]);
    expect([...topology.portBridge]).toEqual([
      ["vi100", "br0"],
      ["vi101", "br1"],
    ]);
  });
});
