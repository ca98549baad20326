/**
 * The lxc plugin's pre-images (preimage.ts), on a hand-written host: the section written for a
 * run's containers validates, plans nothing against the host it was taken from (it is that
 * host), deletes what the run creates with its veths named for the network plugin, and refuses
 * a container the run deletes or replaces (the other kinds: preimage-objects.test.ts).
 */
import { describe, expect, it } from "vitest";
import { validate_lxc } from "../../src/generated/validators.js";
import { liveContainer, planOf } from "./lxc.testing.js";
import { lxcImage, lxcScope } from "./preimage.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";
import { containerVeths } from "./veths.js";

const before: LxcLive = {
  bridges: { oprbA: "linux", oprbB: "linux" },
  aliases: { "op-test/busybox": "f00d" },
  containers: [
    liveContainer("ct101", {
      id: "101",
      config: {
        "user.op.managed": "true",
        "user.op.id": "101",
        "user.op.image": "op-test/busybox",
        "limits.memory": "128MiB",
      },
      devices: {
        eth0: {
          type: "nic",
          nictype: "bridged",
          parent: "oprbA",
          host_name: "vi101",
          name: "eth0",
        },
      },
    }),
  ],
};

const changed: LxcSection = {
  containers: [
    { id: 101, image: "op-test/busybox", bridge: "oprbB", limits: { memory: 256 } },
    { id: 102, image: "op-test/busybox", bridge: "oprbA" },
  ],
};

describe("lxc pre-images", () => {
  it("write the containers as they were, and the created one absent with its veth", async () => {
    const actions = (await planOf(changed, before)) as LxcAction[];
    expect(actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "create ct102",
      "modify ct101",
    ]);
    const image = lxcImage(lxcScope(actions), before);
    expect(image.refused).toEqual([]);
    const section = image.section as LxcSection;
    expect(validate_lxc(section), JSON.stringify(validate_lxc.errors)).toBe(true);
    expect(section.containers?.[1]).toEqual({
      id: 102,
      name: "ct102",
      ensure: "absent",
      nics: [{ type: "bridged", bridge: "oprbA", host_name: "vi102" }],
    });
    // The network plugin keeps the veth of the container to delete on its bridge till then.
    expect(containerVeths(section)).toContainEqual({ veth: "vi102", bridge: "oprbA" });
    // Against the host it was taken from, the pre-image changes nothing.
    expect(await planOf(section, before)).toEqual([]);
  });

  it("refuse a container the run deletes or replaces, beside a profile it creates", () => {
    const gone: LxcAction = {
      kind: "delete",
      plugin: "lxc",
      resource: "container",
      id: "ct101",
      before: {
        container: before.containers[0] as never,
        unprotect: false,
        stopTimeout: 10,
        removeSources: [],
      },
      reason: "absent",
    };
    const profile = {
      kind: "create",
      plugin: "lxc",
      resource: "profile",
      id: "web",
      after: {},
      reason: "new",
    } as unknown as LxcAction;
    const image = lxcImage(lxcScope([gone, profile]), before);
    expect(image.refused).toEqual([
      "container ct101: the run deletes or replaces it, and its disk would not come back",
    ]);
    expect(image.section).toEqual({ profiles: [{ name: "web", ensure: "absent" }] });
  });
});
