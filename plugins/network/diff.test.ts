/**
 * diff is pure: each fixture folder holds a desired state, a live state and the actions they
 * must produce (as nmstate tests gen_diff). `OP_WRITE_FIXTURES=1` rewrites actions.json from
 * the current code, for a human to review in the diff before committing.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diffNetwork } from "./diff.js";
import type { NetDesired, NetLive } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const cases = readdirSync(root).sort();

function read<T>(folder: string, file: string): T {
  return JSON.parse(readFileSync(join(root, folder, file), "utf8")) as T;
}

describe("network diff fixtures", () => {
  it("has fixture cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
  });

  for (const name of cases) {
    it(name, () => {
      const actions = diffNetwork(
        read<NetDesired>(name, "desired.json"),
        read<NetLive>(name, "live.json"),
      );
      const path = join(root, name, "actions.json");
      if (process.env.OP_WRITE_FIXTURES === "1" || !existsSync(path)) {
        writeFileSync(path, `${JSON.stringify(actions, null, 2)}\n`);
        if (process.env.OP_WRITE_FIXTURES !== "1")
          throw new Error(`${name}: wrote a missing actions.json; review it`);
      }
      expect(JSON.parse(JSON.stringify(actions))).toEqual(read(name, "actions.json"));
    });
  }
});
