import { describe, expect, it } from "vitest";
import { snapshotChanges, snapshotsTag, snapshotWork } from "./snapshots.js";

const keep = [
  { name: "base", stateful: false },
  { name: "live", stateful: true },
];

describe("named snapshots", () => {
  it("tags what the file declares, prune included", () => {
    expect(snapshotsTag({ keep, prune: false })).toBe("base,live");
    expect(snapshotsTag({ keep: [], prune: true })).toBe(";prune");
  });

  it("takes the missing ones and deletes nothing without prune", () => {
    expect(snapshotChanges({ keep, prune: false }, ["base", "other", "snap0"], undefined)).toEqual([
      { path: "snapshots.live", after: "stateful snapshot" },
    ]);
  });

  it("with prune deletes the undeclared ones the schedule did not make", () => {
    const changes = snapshotChanges({ keep, prune: true }, ["base", "other", "snap0"], undefined);
    expect(changes).toEqual([
      { path: "snapshots.live", after: "stateful snapshot" },
      { path: "snapshots.other", before: "snapshot" },
    ]);
    expect(snapshotChanges({ keep, prune: true }, ["base", "live", "auto1"], "auto%d")).toEqual([]);
    expect(snapshotChanges({ keep, prune: true }, ["base", "live", "snap1"], "auto%d")).toEqual([
      { path: "snapshots.snap1", before: "snapshot" },
    ]);
  });

  it("says nothing when the snapshots were not read or none are declared", () => {
    expect(snapshotChanges({ keep, prune: true }, undefined, undefined)).toEqual([]);
    expect(snapshotChanges(undefined, ["x"], undefined)).toEqual([]);
  });

  it("turns the differences into the work apply does", () => {
    expect(snapshotWork({ keep, prune: true }, ["live", "old"], undefined)).toEqual({
      create: [{ name: "base", stateful: false }],
      remove: ["old"],
    });
  });
});
