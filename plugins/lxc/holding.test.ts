/** The one comparison of the object kinds, under each kind's rule (holding.ts Compared). */
import { describe, expect, it } from "vitest";
import { comparedFor, configChanges, deviceChanges } from "./holding.js";

describe("configChanges", () => {
  const live = { "ipv4.nat": "true", "ipv4.dhcp": "false", "user.x": "1" };
  const desired = { "ipv4.dhcp": "true" };

  it("compares only the keys the file gives under `declared` (Incus's defaults are no drift)", () => {
    expect(configChanges(desired, live, "declared")).toEqual([
      { path: "config.ipv4.dhcp", before: "false", after: "true" },
    ]);
  });

  it("compares every key under `all`: one added by hand is drift to remove", () => {
    expect(configChanges(desired, live, "all")).toEqual([
      { path: "config.ipv4.dhcp", before: "false", after: "true" },
      { path: "config.ipv4.nat", before: "true" },
      { path: "config.user.x", before: "1" },
    ]);
  });

  it("takes `all` for an owned profile or project, `declared` for an adopted one", () => {
    expect(comparedFor("owned")).toBe("all");
    expect(comparedFor("adopted")).toBe("declared");
  });
});

describe("deviceChanges", () => {
  it("leaves a device the file does not name under `declared`, removes it under `all`", () => {
    const live = { extra: { type: "disk", path: "/x", source: "/srv" } };
    expect(deviceChanges({}, live, "declared")).toEqual([]);
    expect(deviceChanges({}, live, "all").map((c) => c.path)).toEqual(["devices.extra"]);
  });
});
