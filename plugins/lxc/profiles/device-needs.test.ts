import { describe, expect, it } from "vitest";
import { deviceNeeds } from "./diff.js";

describe("a profile's device needs", () => {
  it("names the managed network of a NIC and the custom volume of a disk, in its project and in default", () => {
    expect(
      deviceNeeds(
        {
          root: { type: "disk", pool: "default", path: "/" },
          eth0: { type: "nic", network: "net0", name: "eth0" },
          eth1: { type: "nic", nictype: "bridged", parent: "br0" },
          data: { type: "disk", pool: "fast", source: "vol1", path: "/data" },
          host: { type: "disk", source: "/srv", path: "/srv" },
        },
        "tenant",
      ).map((ref) => `${ref.resource} ${ref.id}`),
    ).toEqual([
      "network tenant/net0",
      "network net0",
      "volume tenant/fast/vol1",
      "volume fast/vol1",
    ]);
    expect(
      deviceNeeds({ eth0: { type: "nic", network: "net0" } }, "default").map((ref) => ref.id),
    ).toEqual(["net0"]);
  });
});
