/** Which pre-image blobs `op ledger prune-images` removes (the pure choice). */
import { describe, expect, it } from "vitest";
import { choosePrune, type ImageRun } from "./prune-images.js";

const hash = (c: string) => c.repeat(64);
const run = (n: number): ImageRun => ({ run: `run-${n}`, preimage: hash(String(n)) });
/** Five runs, oldest first, each with its pre-image and post-image stored. */
const runs = [1, 2, 3, 4, 5].map(run);
const post = (n: number) => hash(String.fromCharCode(97 + n)); // b..f: apart from the digits
const stored = {
  blobs: [...runs.map((r) => r.preimage), ...[1, 2, 3, 4, 5].map(post)],
  refs: new Map([1, 2, 3, 4, 5].map((n) => [`post-run-${n}`, post(n)])),
};

describe("choosePrune", () => {
  it("keeps the newest N runs' pre- and post-images and removes the older ones with their names", () => {
    const choice = choosePrune({ runs, keep: 2, ...stored });
    expect(choice.kept).toEqual(["run-4", "run-5"]);
    expect(choice.pruned.map((r) => r.run)).toEqual(["run-1", "run-2", "run-3"]);
    expect(choice.refs).toEqual(["post-run-1", "post-run-2", "post-run-3"]);
    expect(choice.blobs).toEqual(
      [
        { blob: hash("1"), what: "pre-image", run: "run-1" },
        { blob: hash("2"), what: "pre-image", run: "run-2" },
        { blob: hash("3"), what: "pre-image", run: "run-3" },
        { blob: post(1), what: "post-image", run: "run-1" },
        { blob: post(2), what: "post-image", run: "run-2" },
        { blob: post(3), what: "post-image", run: "run-3" },
      ].sort((a, b) => a.blob.localeCompare(b.blob)),
    );
    expect(choice.pending).toBeUndefined();
  });

  it("keeps the run a pending op confirm waits for, however old", () => {
    const choice = choosePrune({ runs, keep: 1, pending: "run-2", ...stored });
    expect(choice.kept).toEqual(["run-2", "run-5"]);
    expect(choice.pending).toBe("run-2");
    const gone = new Set(choice.blobs.map((b) => b.blob));
    expect(gone.has(hash("2"))).toBe(false);
    expect(gone.has(post(2))).toBe(false);
    expect(choice.refs).not.toContain("post-run-2");
    expect(choice.pruned.map((r) => r.run)).toEqual(["run-1", "run-3", "run-4"]);
  });

  it("removes a blob nothing names, keeps a name op did not write as post-RUN, and lists a run once", () => {
    const orphan = hash("9");
    const foreign = hash("a");
    const choice = choosePrune({
      runs,
      keep: 5,
      blobs: [...stored.blobs, orphan, foreign],
      refs: new Map([...stored.refs, ["someone-else", foreign]]),
    });
    expect(choice.blobs).toEqual([{ blob: orphan, what: "unnamed" }]);
    expect(choice.pruned).toEqual([]);
    expect(choice.refs).toEqual([]);
  });

  it("does not list again a run whose pre-image is gone already, and with --keep 0 removes all", () => {
    const choice = choosePrune({
      runs,
      keep: 0,
      blobs: stored.blobs.filter((b) => b !== hash("1")),
      refs: stored.refs,
    });
    expect(choice.kept).toEqual([]);
    expect(choice.pruned.map((r) => r.run)).toEqual(["run-2", "run-3", "run-4", "run-5"]);
    expect(choice.blobs).toHaveLength(9);
    expect(choice.refs).toHaveLength(5);
  });

  it("keeps a pending run whose pre-image record the ledger does not have (yet)", () => {
    const choice = choosePrune({ runs, keep: 1, pending: "run-6", ...stored });
    expect(choice.kept).toEqual(["run-5", "run-6"]);
  });
});
