/**
 * diff is pure: every folder under fixtures/ holds a desired and a live model and the actions
 * expected from them (as nmstate tests gen_diff). The cases cover create, converged, live
 * limits, drift (stopped, veth renamed, port removed), NIC moves, image replacement, image
 * imports, prune and foreign containers, protection and the op-dbus property bag.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diffLxc } from "./diff.js";
import type { LxcDesired, LxcLive } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const read = <T>(dir: string, file: string): T =>
  JSON.parse(readFileSync(join(root, dir, file), "utf8")) as T;

describe("diffLxc fixtures", () => {
  const cases = readdirSync(root).sort();
  it("has fixture cases", () => expect(cases.length).toBeGreaterThan(10));
  for (const name of cases) {
    it(name, () => {
      const actions = diffLxc(
        read<LxcDesired>(name, "desired.json"),
        read<LxcLive>(name, "live.json"),
      );
      expect(JSON.parse(JSON.stringify(actions))).toEqual(read(name, "actions.json"));
    });
  }
});

describe("diffLxc invariants", () => {
  it("never touches a container that is neither in the file nor op's, even with prune", () => {
    const live = read<LxcLive>("foreign-and-prune", "live.json");
    const actions = diffLxc(read<LxcDesired>("foreign-and-prune", "desired.json"), live);
    expect(actions.map((a) => a.id)).not.toContain("someones");
  });

  it("re-applying after a converged create plans nothing", () => {
    expect(diffLxc(read("converged", "desired.json"), read("converged", "live.json"))).toEqual([]);
  });
});
