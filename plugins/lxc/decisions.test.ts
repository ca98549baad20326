/**
 * The lxc plugin's ownership, pruning and deletion decisions, and the words of its plans, on
 * small hand-written models: each condition has a case that fails when it is flipped.
 */
import { describe, expect, it } from "vitest";
import { renderPlan } from "../../src/cli/output.js";
import type { Action, DeleteAction, ModifyAction } from "../../src/plugin.js";
import { linkRef, ovsDatabaseRef } from "../network/refs.js";
import { containerChanges, deviceWords, diffLxc } from "./diff.js";
import { liveContainer } from "./lxc.testing.js";
import type {
  DesiredAbsent,
  DesiredContainer,
  LiveContainer,
  LxcDesired,
  LxcKinds,
  LxcLive,
} from "./types.js";

function desiredContainer(name: string, fields: Partial<DesiredContainer> = {}): DesiredContainer {
  return {
    name,
    project: "default",
    id: name,
    path: "/plugins/lxc/containers/0",
    image: "op-test/busybox",
    running: false,
    profiles: ["default"],
    config: { "user.op.managed": "true", "user.op.image": "op-test/busybox" },
    devices: {},
    mounts: [],
    stopTimeout: 30,
    restartAllowed: false,
    ...fields,
  };
}

function absentEntry(name: string, fields: Partial<DesiredAbsent> = {}): DesiredAbsent {
  return {
    name,
    project: "default",
    path: "/plugins/lxc/containers/0",
    unprotect: false,
    stopTimeout: 30,
    removeSources: [],
    ...fields,
  };
}

const desired = (fields: Partial<LxcDesired>): LxcDesired => ({
  prune: false,
  images: [],
  containers: [],
  absent: [],
  ...fields,
});
const live = (containers: LiveContainer[]): LxcLive => ({ containers, bridges: {}, aliases: {} });
const ids = (actions: Action[]) => actions.map((a) => `${a.kind} ${a.id}`);

describe("pruning", () => {
  const mine = liveContainer("mine");
  const foreign = liveContainer("foreign", { managed: false, config: {} });

  it("deletes nothing that left the file unless prune is true", () => {
    expect(diffLxc(desired({}), live([mine, foreign]))).toEqual([]);
  });

  it("with prune, deletes only op's containers that are not in the file", () => {
    expect(ids(diffLxc(desired({ prune: true }), live([mine, foreign])))).toEqual(["delete mine"]);
  });

  it("with prune, keeps op's containers the file lists, present or absent", () => {
    expect(
      diffLxc(desired({ prune: true, containers: [desiredContainer("mine")] }), live([mine])),
    ).toEqual([]);
    const gone = diffLxc(desired({ prune: true, absent: [absentEntry("mine")] }), live([mine]));
    expect(gone.map((a) => a.reason)).toEqual(["ensure: absent"]);
  });

  it("a pruned container keeps its directories and its delete protection", () => {
    const [action] = diffLxc(
      desired({ prune: true }),
      live([
        liveContainer("mine", { config: { ...mine.config, "security.protection.delete": "true" } }),
      ]),
    ) as DeleteAction<LxcKinds>[];
    expect(action?.before).toMatchObject({ unprotect: false, removeSources: [] });
    expect(action?.reason).toBe(
      "not in the file (prune); has delete protection, so it will be refused",
    );
  });
});

describe("deleting a container (ensure: absent)", () => {
  const removal = { path: "/srv/scratch", bytes: 5 * 1024 * 1024 };

  it("does nothing when the container is not there", () => {
    expect(
      diffLxc(desired({ absent: [absentEntry("x", { removeSources: [removal] })] }), live([])),
    ).toEqual([]);
  });

  it("names each directory it removes, with its size, in the plan", () => {
    const [action] = diffLxc(
      desired({ absent: [absentEntry("x", { removeSources: [removal] })] }),
      live([liveContainer("x", { managed: false, config: {} })]),
    ) as DeleteAction<LxcKinds>[];
    expect(action?.reason).toBe(
      "ensure: absent (made outside op); then removes host directory /srv/scratch (5.0 MiB)",
    );
    expect((action as DeleteAction<LxcKinds>).before).toMatchObject({
      removeSources: [removal],
    });
    expect(renderPlan([action as Action])).toContain(
      "- delete lxc container x  (ensure: absent (made outside op); then removes host directory /srv/scratch (5.0 MiB))",
    );
  });

  it("lifts delete protection only when the file turns it off", () => {
    const protectedOne = liveContainer("p", {
      config: { "security.protection.delete": "true" },
    });
    const kept = diffLxc(
      desired({ absent: [absentEntry("p")] }),
      live([protectedOne]),
    ) as DeleteAction<LxcKinds>[];
    expect(kept[0]?.before).toMatchObject({ unprotect: false });
    expect(kept[0]?.reason).toBe("ensure: absent; has delete protection, so it will be refused");
    const lifted = diffLxc(
      desired({ absent: [absentEntry("p", { unprotect: true, removeSources: [removal] })] }),
      live([protectedOne]),
    ) as DeleteAction<LxcKinds>[];
    expect(lifted[0]?.before).toMatchObject({ unprotect: true });
    expect(lifted[0]?.reason).toBe(
      "ensure: absent; lifts delete protection first; then removes host directory /srv/scratch (5.0 MiB)",
    );
  });

  it("a container replaced for a new image removes no directory", () => {
    const actions = diffLxc(
      desired({ containers: [desiredContainer("r", { image: "other" })] }),
      live([liveContainer("r")]),
    );
    expect(ids(actions)).toEqual(["delete r", "create r"]);
    expect((actions[0] as DeleteAction<LxcKinds>).before).toMatchObject({ removeSources: [] });
  });

  it("never deletes a container the file lists as present with the same image", () => {
    expect(
      diffLxc(desired({ containers: [desiredContainer("s")] }), live([liveContainer("s")])),
    ).toEqual([]);
  });
});

describe("plan words", () => {
  const nic = {
    type: "nic",
    nictype: "bridged",
    parent: "hubr0",
    host_name: "vi601",
    name: "eth0",
  };

  it("re-plugging an adopted container's NIC says where it was, never undefined", () => {
    const adopted = liveContainer("ct601", {
      managed: false,
      config: {},
      devices: { eth0: { type: "nic", network: "incusbr0", name: "eth0" } },
    });
    const [action] = diffLxc(
      desired({ containers: [desiredContainer("ct601", { config: {}, devices: { eth0: nic } })] }),
      live([adopted]),
    ) as ModifyAction<LxcKinds>[];
    // Not op's: the modify adopts it (the engine refuses that unless the file adopts it).
    expect(action?.reason).toBe("made outside op: re-plug eth0: network incusbr0 → hubr0/vi601");
    expect(action?.adopt).toMatchObject({ allowed: false });
    const text = renderPlan([action as Action]);
    expect(text).toContain("~ adopt lxc container ");
    expect(text).toContain("    devices.eth0: network incusbr0 → hubr0/vi601");
    expect(text).not.toMatch(/undefined|[{}[\]]/);
  });

  it("adding, removing and changing mounts and profiles read as words, not JSON", () => {
    const before = liveContainer("w", {
      profiles: ["default"],
      devices: {
        "mnt-old": { type: "disk", source: "/srv/old", path: "/old" },
        "mnt-d": { type: "disk", source: "/srv/a", path: "/d" },
      },
    });
    const [action] = diffLxc(
      desired({
        containers: [
          desiredContainer("w", {
            profiles: ["default", "extra"],
            devices: {
              "mnt-d": { type: "disk", source: "/srv/b", path: "/d", readonly: "true" },
              "mnt-new": { type: "disk", source: "/srv/new", path: "/new" },
            },
          }),
        ],
      }),
      live([before]),
    ) as ModifyAction<LxcKinds>[];
    expect(action?.reason).toBe(
      "profiles default → default, extra, change device mnt-d: /srv/a at /d → /srv/b at /d (read-only), add device mnt-new: /srv/new at /new, remove device mnt-old: /srv/old at /old",
    );
    expect(renderPlan([action as Action])).not.toMatch(/undefined|[{}[\]"]/);
  });

  it("an unusual device is spelt as its keys", () => {
    expect(deviceWords({ type: "unix-char", source: "/dev/fuse", path: "/dev/fuse" })).toBe(
      "unix-char, path /dev/fuse, source /dev/fuse",
    );
    expect(deviceWords({ type: "nic", nictype: "macvlan", name: "eth1" })).toBe("macvlan NIC");
  });

  it("a NIC down inside a running container is drift, and the plan says so", () => {
    const desiredOne = desiredContainer("n", {
      running: true,
      devices: { eth0: nic },
      nics: [{ device: "eth0", bridge: "hubr0", veth: "vi601", kind: "linux" }],
    });
    const running = (nicUp: boolean | undefined) =>
      liveContainer("n", {
        status: "running",
        devices: { eth0: nic },
        veth: "vi601",
        master: "hubr0",
        ...(nicUp === undefined ? {} : { nicUp }),
      });
    expect(containerChanges(desiredOne, running(true))).toEqual([]);
    expect(containerChanges(desiredOne, running(undefined))).toEqual([]);
    const [action] = diffLxc(
      desired({ containers: [desiredOne] }),
      live([running(false)]),
    ) as ModifyAction<LxcKinds>[];
    expect(action?.changes).toEqual([{ path: "eth0 inside", before: "down", after: "up" }]);
    expect(action?.reason).toBe("bring eth0 up inside (it is down)");
  });
});

describe("replacing a container for a new image", () => {
  it("never replaces a container whose current image op cannot tell", () => {
    const actions = diffLxc(
      desired({ containers: [desiredContainer("u", { image: "other" })] }),
      live([liveContainer("u", { image: undefined })]),
    );
    expect(actions.filter((a) => a.kind === "delete")).toEqual([]);
  });

  it("lifts the old container's delete protection only when the file turns it off", () => {
    const protectedLive = liveContainer("p", {
      config: { "user.op.managed": "true", "security.protection.delete": "true" },
    });
    const replace = (config: Record<string, string>) =>
      diffLxc(
        desired({ containers: [desiredContainer("p", { image: "other", config })] }),
        live([protectedLive]),
      )[0] as Extract<DeleteAction<LxcKinds>, { resource: "container" }>;
    const off = replace({ "user.op.managed": "true", "security.protection.delete": "false" });
    expect(off.kind).toBe("delete");
    expect(off.before.unprotect).toBe(true);
    const kept = replace({ "user.op.managed": "true" });
    expect(kept.kind).toBe("delete");
    expect(kept.before.unprotect).toBe(false);
  });
});

describe("what a change waits for", () => {
  const nic = { device: "eth0", bridge: "br9", veth: "v9" };
  const modifyOf = (want: DesiredContainer, have: LiveContainer) =>
    diffLxc(desired({ containers: [want] }), live([have]))[0] as ModifyAction<LxcKinds>;

  it("a start waits for its bridge, which must come from this run when it is not on the host", () => {
    const start = modifyOf(
      desiredContainer("n", {
        running: true,
        nics: [nic],
        config: { ...liveContainer("n").config, "limits.cpu": "1" },
      }),
      liveContainer("n"),
    );
    expect(start.changes.map((c) => c.path)).toEqual(["config.limits.cpu", "running"]);
    expect(start.needs).toEqual([linkRef("br9"), ovsDatabaseRef]);
    expect(start.expects).toEqual([linkRef("br9")]);
  });

  it("re-plugging a renamed veth waits for the bridge; a config change alone does not", () => {
    const running = { status: "running" as const, veth: "old9", master: "br9", nicUp: true };
    const replug = modifyOf(
      desiredContainer("n", { running: true, nics: [nic] }),
      liveContainer("n", running),
    );
    expect(replug.changes.map((c) => c.path)).toEqual(["veth"]);
    expect(replug.needs).toEqual([linkRef("br9"), ovsDatabaseRef]);
    const limits = modifyOf(
      desiredContainer("n", {
        running: true,
        nics: [nic],
        config: { ...liveContainer("n").config, "limits.cpu": "1" },
      }),
      liveContainer("n", { ...running, veth: "v9" }),
    );
    expect(limits.changes.map((c) => c.path)).toEqual(["config.limits.cpu"]);
    expect(limits.needs).toBeUndefined();
    expect(limits.expects).toBeUndefined();
  });
});
