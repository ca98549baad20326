/**
 * `op query --plugin lxc`: the containers' table names a project's container PROJECT/NAME and
 * shows no value of Incus's volatile keys; `--json` leaves them out unless `--all`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lxcQueryJson, reportContainers } from "../index.js";
import type { LxcLive } from "../types.js";

const live = (): LxcLive => {
  const state = JSON.parse(
    readFileSync(join(import.meta.dirname, "..", "fixtures", "converged", "live.json"), "utf8"),
  ) as LxcLive;
  const [first] = state.containers;
  if (first === undefined) throw new Error("fixture without a container");
  const foreign = {
    ...first,
    name: "other",
    project: "tenant",
    managed: false,
    put: { ...first.put, volatile: { "volatile.base_image": "f00dfeed", "volatile.uuid": "u-1" } },
  };
  delete foreign.image;
  state.containers.push(foreign);
  return state;
};

describe("op query of containers", () => {
  it("names a project's container PROJECT/NAME and shows no volatile value", () => {
    const report = reportContainers(live());
    expect(report.rows.map((row) => [row[0], row[3]])).toEqual([
      ["ct100", "op-test/busybox"],
      ["tenant/other", "-"],
    ]);
    expect(JSON.stringify(report)).not.toMatch(/f00dfeed|u-1/);
  });

  it("leaves volatile keys out of --json, and shows them with --all", () => {
    expect(JSON.stringify(lxcQueryJson(live(), { all: false }))).not.toMatch(/volatile/);
    expect(JSON.stringify(lxcQueryJson(live(), { all: true }))).toMatch(/volatile.base_image/);
  });
});
