/**
 * The plan from a state file and a host, as data: each fixture folder holds the network section
 * a user writes (`section.json`, and the lxc section it goes with when it matters, `lxc.json`),
 * a host the kernel can have (`live.json`, as query reads it) and the actions op must plan
 * (`actions.json`, written and reviewed by hand against the folder's README.md). The section
 * goes through prepare, uplink guard included, as `op plan` does. A folder without its expected
 * actions fails: the test never writes them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LxcSection } from "../../src/generated/lxc.js";
import type { NetworkSection } from "../../src/generated/network.js";
import { validate_lxc, validate_network } from "../../src/generated/validators.js";
import { containerVeths } from "../lxc/veths.js";
import { diffNetwork } from "./diff.js";
import { prepareNetwork } from "./prepare.js";
import type { NetLive } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const cases = readdirSync(root).sort();

function read<T>(folder: string, file: string): T {
  return JSON.parse(readFileSync(join(root, folder, file), "utf8")) as T;
}

function optional<T>(folder: string, file: string): T | undefined {
  return readdirSync(join(root, folder)).includes(file) ? read<T>(folder, file) : undefined;
}

describe("network plan fixtures", () => {
  it("has fixture cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
  });

  for (const name of cases) {
    it(name, () => {
      const section = read<NetworkSection>(name, "section.json");
      expect(validate_network(section), JSON.stringify(validate_network.errors)).toBe(true);
      const lxc = optional<LxcSection>(name, "lxc.json");
      if (lxc !== undefined) expect(validate_lxc(lxc)).toBe(true);
      const live = read<NetLive>(name, "live.json");
      const desired = prepareNetwork(section, live, {
        allowUplink: false,
        guests: containerVeths(lxc),
      });
      const actions = diffNetwork(desired, live);
      expect(JSON.parse(JSON.stringify(actions))).toEqual(read(name, "actions.json"));
    });
  }
});
