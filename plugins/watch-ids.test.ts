import { describe, expect, it } from "vitest";
import { lxcPlugin, networkPlugin, nftablesPlugin } from "../src/watch/sources/index.js";
import { registry } from "./registry.js";
import { watchSourceIds as ids } from "./watch-ids.js";

describe("the watch sources' ids", () => {
  it("name plugins the registry has", () => {
    for (const name of [lxcPlugin, networkPlugin, nftablesPlugin])
      expect(registry.named(name)?.name).toBe(name);
  });

  it("are spelled as the plugins' actions spell them", () => {
    expect(ids.container("default", "ct1")).toBe("ct1");
    expect(ids.container("p1", "ct1")).toBe("p1/ct1");
    expect(ids.route({ to: "default", dev: "br0", family: 6 })).toBe("::/0 dev br0");
    expect(ids.table("inet", "op_demo")).toBe("inet/op_demo");
    expect(ids.ovsDatabase).toBe("Open vSwitch");
    expect(ids.isContainerVeth("vi100")).toBe(true);
    expect(ids.isContainerVeth("veth0")).toBe(false);
  });
});
