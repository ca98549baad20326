/** The image store as the query builds it from Incus's listings (a recorded answer's shape). */
import { describe, expect, it } from "vitest";
import { aliasTargets, liveImages } from "./query.js";

describe("liveImages", () => {
  const images = liveImages(
    [
      {
        fingerprint: "f1",
        aliases: [
          { name: "z", description: "imported by op" },
          { name: "a", description: "" },
        ],
        properties: { os: "busybox", "user.op.managed": "true" },
      },
      { fingerprint: "f2", aliases: null, properties: null },
      { fingerprint: "f3", aliases: [{ name: "m" }], properties: { "user.op.managed": "false" } },
      {
        fingerprint: "f4",
        aliases: [],
        properties: { "user.op.managed": "true", "user.op.source-sha256": "5".repeat(64) },
      },
    ],
    [
      { name: "ct1", project: "default", config: { "volatile.base_image": "f1" } },
      { name: "vm1", project: "p1", config: { "volatile.base_image": "f1" } },
      { name: "bare", config: null },
      { name: "other", project: "p2", config: { "volatile.base_image": "f9" } },
    ],
  );

  it("marks as op's only an image whose property says true, and lists its users in any project", () => {
    expect(images).toEqual([
      {
        fingerprint: "f1",
        aliases: [
          { name: "a", description: "" },
          { name: "z", description: "imported by op" },
        ],
        managed: true,
        usedBy: [
          { project: "default", name: "ct1" },
          { project: "p1", name: "vm1" },
        ],
      },
      { fingerprint: "f2", aliases: [], managed: false, usedBy: [] },
      { fingerprint: "f3", aliases: [{ name: "m", description: "" }], managed: false, usedBy: [] },
      { fingerprint: "f4", aliases: [], managed: true, usedBy: [], sourceSha256: "5".repeat(64) },
    ]);
  });

  it("gives every alias's target", () => {
    expect(aliasTargets(images)).toEqual({ a: "f1", z: "f1", m: "f3" });
  });
});
