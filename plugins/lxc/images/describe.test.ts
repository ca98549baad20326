/** How the plan and the ledger name an import of each form, and a built image's changes. */
import { describe, expect, it } from "vitest";
import type { LxcLive } from "../types.js";
import { imageChanges, imageSource } from "./describe.js";

const built = {
  alias: "optb/x",
  path: "/plugins/lxc/images/0",
  tarball: "/srv/rootfs.tar.xz",
  sourceSha256: "c".repeat(64),
  created: 1,
  adapt: {},
  fingerprint: "b".repeat(64),
};
const split = {
  alias: "optb/y",
  path: "/p",
  metadata: "/m.tar",
  rootfs: "/r.tar",
  fingerprint: "b".repeat(64),
};
const live = (sourceSha256?: string): LxcLive => ({
  containers: [],
  bridges: {},
  aliases: {},
  images: [
    {
      fingerprint: "a".repeat(64),
      aliases: [],
      managed: true,
      usedBy: [],
      ...(sourceSha256 ? { sourceSha256 } : {}),
    },
  ],
});

describe("imageSource", () => {
  it("names the tarball and its SHA-256, or the two tarballs of a split image", () => {
    expect(imageSource(built)).toBe(
      `built from /srv/rootfs.tar.xz (source SHA-256 ${"c".repeat(12)})`,
    );
    expect(imageSource(split)).toBe("from /m.tar and /r.tar");
  });
});

describe("imageChanges", () => {
  it("gives a built image's source SHA-256 before and after, the fingerprint of both forms", () => {
    expect(imageChanges(built, "a".repeat(64), live("d".repeat(64)))).toEqual([
      { path: "fingerprint", before: "a".repeat(64), after: "b".repeat(64) },
      { path: "source_sha256", before: "d".repeat(64), after: "c".repeat(64) },
    ]);
    // An image op imported split has no source: the change is an addition.
    expect(imageChanges(built, "a".repeat(64), live())).toEqual([
      { path: "fingerprint", before: "a".repeat(64), after: "b".repeat(64) },
      { path: "source_sha256", after: "c".repeat(64) },
    ]);
    expect(imageChanges(split, "a".repeat(64), live("d".repeat(64)))).toEqual([
      { path: "fingerprint", before: "a".repeat(64), after: "b".repeat(64) },
    ]);
  });
});
