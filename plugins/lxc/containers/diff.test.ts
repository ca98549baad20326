/**
 * diff of the container fields of issue 14 (projects, restart-needing keys, description,
 * ephemeral, named snapshots), from the `converged` fixture changed one field at a time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diffLxc } from "../diff.js";
import type { DesiredContainer, LiveContainer, LxcDesired, LxcLive } from "../types.js";

const fixture = join(import.meta.dirname, "..", "fixtures", "converged");
const read = <T>(file: string): T => JSON.parse(readFileSync(join(fixture, file), "utf8")) as T;

function state(
  desiredFields: Partial<DesiredContainer> = {},
  liveFields: Partial<LiveContainer> = {},
): { desired: LxcDesired; live: LxcLive; wanted: DesiredContainer; had: LiveContainer } {
  const desired = read<LxcDesired>("desired.json");
  const live = read<LxcLive>("live.json");
  const wanted = Object.assign(desired.containers[0] as DesiredContainer, desiredFields);
  const had = Object.assign(live.containers[0] as LiveContainer, liveFields);
  return { desired, live, wanted, had };
}

describe("containers in projects", () => {
  it("keys by project and name: the same name in another project is another container", () => {
    const { desired, live, wanted } = state();
    desired.containers.push({ ...wanted, project: "tenant", path: "/plugins/lxc/containers/1" });
    const actions = diffLxc(desired, live);
    expect(actions.map((a) => [a.kind, a.id])).toEqual([["create", "tenant/ct100"]]);
    expect(actions[0]?.needs).toContainEqual({ plugin: "lxc", resource: "project", id: "tenant" });
  });

  it("prunes op's containers of every project that left the file, by PROJECT/NAME", () => {
    const { desired, live, had } = state();
    desired.prune = true;
    live.containers.push({ ...had, project: "tenant" });
    expect(diffLxc(desired, live).map((a) => [a.kind, a.id])).toEqual([["delete", "tenant/ct100"]]);
  });

  it("deletes an absent entry only in its own project", () => {
    const { desired, live, had } = state();
    live.containers.push({ ...had, project: "tenant" });
    desired.absent.push({
      name: "ct100",
      project: "tenant",
      path: "/plugins/lxc/containers/1",
      unprotect: false,
      stopTimeout: 30,
      removeSources: [],
    });
    expect(diffLxc(desired, live).map((a) => [a.kind, a.id])).toEqual([["delete", "tenant/ct100"]]);
  });
});

describe("keys Incus reads only at start", () => {
  const rawLxc = (wanted: DesiredContainer) => {
    wanted.config["raw.lxc"] = "lxc.apparmor.profile = unconfined";
  };

  it("on a running container: held without leave, with the keys named", () => {
    const { desired, live, wanted } = state();
    rawLxc(wanted);
    const [action] = diffLxc(desired, live);
    expect(action?.kind).toBe("modify");
    expect(action?.held).toMatch(/^restart required for raw.lxc: held/);
    // The plan's JSON says a restart is needed, held or not (src/cli/contract.ts).
    expect(action?.restart).toBe(true);
  });

  it("with leave: a modify that restarts, not held", () => {
    const { desired, live, wanted } = state({ restartAllowed: true });
    rawLxc(wanted);
    const [action] = diffLxc(desired, live);
    expect(action?.held).toBeUndefined();
    expect(action?.kind === "modify" && action.changes.at(-1)).toEqual({
      path: "restart",
      after: "graceful restart for raw.lxc",
    });
    expect(action?.reason).toMatch(/\(restart required\)$/);
    expect(action?.restart).toBe(true);
  });

  it("on a stopped container, or one being stopped, no restart is needed", () => {
    for (const fields of [{ running: false }, {}] as const) {
      const { desired, live, wanted } = state(
        fields,
        fields.running === false ? {} : { status: "stopped" },
      );
      rawLxc(wanted);
      if (fields.running !== false) wanted.running = false;
      const [action] = diffLxc(desired, live);
      expect(action?.held).toBeUndefined();
      expect(action?.restart).toBeUndefined();
      expect(action?.kind === "modify" && action.changes.map((c) => c.path)).not.toContain(
        "restart",
      );
    }
  });

  it("a key Incus applies live (limits.memory) is not held", () => {
    const { desired, live, wanted } = state();
    wanted.config["limits.memory"] = "256MiB";
    expect(diffLxc(desired, live)[0]?.held).toBeUndefined();
    expect(diffLxc(desired, live)[0]?.restart).toBeUndefined();
  });
});

describe("description, ephemeral and named snapshots", () => {
  it("changes what the file gives and leaves alone what it does not", () => {
    const { desired, live } = state({ description: "web", ephemeral: true });
    const [action] = diffLxc(desired, live);
    expect(action?.kind === "modify" && action.changes).toEqual([
      { path: "description", before: "", after: "web" },
      { path: "ephemeral", before: false, after: true },
    ]);
    expect(action?.reason).toBe("description (empty) → web, make ephemeral");
    const untouched = state({}, { put: { ...state().had.put, description: "by hand" } });
    expect(diffLxc(untouched.desired, untouched.live)).toEqual([]);
  });

  it("takes a declared snapshot that is missing, once the query read them", () => {
    const snapshots = { keep: [{ name: "base", stateful: false }], prune: false };
    const tag = { "user.op.snapshots": "base" };
    const { desired, live, wanted, had } = state({ snapshots }, { snapshots: ["snap0"] });
    Object.assign(wanted.config, tag);
    Object.assign(had.config, tag);
    const [action] = diffLxc(desired, live);
    expect(action?.kind === "modify" && action.changes).toEqual([
      { path: "snapshots.base", after: "snapshot" },
    ]);
    expect(action?.reason).toBe("take snapshot base");
    had.snapshots = ["snap0", "base"];
    expect(diffLxc(desired, live)).toEqual([]);
  });
});
