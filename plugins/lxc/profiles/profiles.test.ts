/**
 * Profiles from the file to the plan, on hand-written live states: who holds a profile, what
 * is compared (all of an owned one, the file's keys of an adopted one), deletes only of op's
 * unused profiles, what waits for what, and containers' references checked.
 */
import { describe, expect, it } from "vitest";
import { adoptionProblems } from "../../../src/engine/reconcile.js";
import { checkLxc } from "../check.js";
import { lxcPlugin, reportLxc } from "../index.js";
import { quietCtx as ctx, liveContainer, planOf, problemsOf } from "../lxc.testing.js";
import { prepareLxc } from "../prepare.js";
import type { LiveProject } from "../projects/types.js";
import type { DesiredContainer, LxcLive, LxcSection } from "../types.js";
import { checkContainerRefs } from "./prepare.js";
import type { LiveProfile } from "./types.js";

function liveProfile(name: string, fields: Partial<LiveProfile> = {}): LiveProfile {
  return {
    name,
    project: "default",
    description: "",
    config: { "user.op.managed": "true" },
    devices: {},
    usedBy: [],
    managed: true,
    ...fields,
  };
}

function project(name: string, config: Record<string, string> = {}): LiveProject {
  return { name, description: "", config, usedBy: [], managed: false };
}

const defaultProfile = liveProfile("default", { config: {}, managed: false });

function liveState(profiles: LiveProfile[], fields: Partial<LxcLive> = {}): LxcLive {
  return {
    containers: [],
    bridges: {},
    aliases: { "op-test/busybox": "aa" },
    projects: [project("default")],
    profiles: [defaultProfile, ...profiles],
    ...fields,
  };
}

/** A container of op's using `profiles`. */
function usingProfiles(name: string, profiles: string[]) {
  return liveContainer(name, {
    profiles,
    config: {
      "user.op.managed": "true",
      "user.op.id": name,
      "user.op.image": "op-test/busybox",
    },
  });
}

const container = (name: string, profiles: string[], fields: object = {}) => ({
  id: name,
  image: "op-test/busybox",
  running: false,
  profiles,
  ...fields,
});

const nic = { type: "nic", network: "br0", name: "eth1" };

describe("a profile op owns", () => {
  const section = {
    profiles: [{ name: "small", config: { "limits.memory": "128MiB" }, devices: { eth1: nic } }],
  };
  const converged = liveProfile("small", {
    config: { "limits.memory": "128MiB", "user.op.managed": "true" },
    devices: { eth1: nic },
  });

  it("is created with op's tag, and then is no drift", async () => {
    const [create] = await planOf(section, liveState([]));
    expect(create).toMatchObject({ kind: "create", resource: "profile", id: "small" });
    expect(create?.kind === "create" && create.after).toMatchObject({
      config: { "limits.memory": "128MiB", "user.op.managed": "true" },
      devices: { eth1: nic },
      holding: "owned",
    });
    expect(await planOf(section, liveState([converged]))).toEqual([]);
  });

  it("has drift made by hand planned back: a key set, a device added, a device changed", async () => {
    const drifted = liveProfile("small", {
      config: { "limits.memory": "256MiB", "limits.cpu": "2", "user.op.managed": "true" },
      devices: {
        eth1: { ...nic, network: "br1" },
        tmp: { type: "disk", source: "/tmp", path: "/t" },
      },
    });
    const [modify] = await planOf(section, liveState([drifted]));
    expect(modify?.reason).toBe(
      "remove config.limits.cpu, config.limits.memory 256MiB → 128MiB, change device eth1: network br1 → network br0, remove device tmp: /tmp at /t",
    );
  });
});

describe("a profile op did not create", () => {
  const theirs = liveProfile("theirs", {
    config: { "environment.KEEP": "yes" },
    devices: { eth0: nic },
    description: "by hand",
    managed: false,
  });

  it("is an adoption without adopt, which the engine refuses at the entry", async () => {
    const [modify] = await planOf(
      { profiles: [{ name: "theirs", config: { "limits.cpu": "1" } }] },
      liveState([theirs]),
    );
    expect(modify).toMatchObject({
      kind: "modify",
      adopt: { path: "/plugins/lxc/profiles/0", allowed: false },
    });
    expect(
      adoptionProblems(modify === undefined ? [] : [modify], { allowUplink: false }),
    ).toMatchObject([{ path: "/plugins/lxc/profiles/0" }]);
    expect(
      adoptionProblems(modify === undefined ? [] : [modify], { allowUplink: false, adopt: true }),
    ).toEqual([]);
    // Naming it with nothing to change adopts nothing.
    expect(await planOf({ profiles: [{ name: "theirs" }] }, liveState([theirs]))).toEqual([]);
  });

  it("with adopt, has only the file's keys and devices compared, and keeps its description", async () => {
    const adopted = {
      profiles: [
        {
          name: "theirs",
          adopt: true,
          config: { "limits.cpu": "1" },
          devices: { data: { type: "disk", source: "/srv", path: "/srv" } },
        },
      ],
    };
    const [modify] = await planOf(adopted, liveState([theirs]));
    expect(modify?.kind === "modify" && modify.changes.map((c) => c.path)).toEqual([
      "config.limits.cpu",
      "devices.data",
    ]);
    expect(
      await planOf(
        adopted,
        liveState([
          {
            ...theirs,
            config: { ...theirs.config, "limits.cpu": "1" },
            devices: { ...theirs.devices, data: { type: "disk", source: "/srv", path: "/srv" } },
          },
        ]),
      ),
    ).toEqual([]);
  });

  it("is never pruned, nor is a project's default profile", async () => {
    expect(await planOf({ prune: true }, liveState([theirs]))).toEqual([]);
  });
});

describe("deleting a profile", () => {
  it("prunes op's profiles that left the file, never one a bound client inherits", async () => {
    // As a client bound to a project without profiles of its own lists the default project's.
    const inherited = liveProfile("elsewhere", { inherited: true });
    const live = liveState([liveProfile("old"), inherited]);
    expect((await planOf({ prune: true }, live)).map((a) => `${a.kind} ${a.id}`)).toEqual([
      "delete old",
    ]);
    expect(await problemsOf({ profiles: [{ name: "elsewhere", ensure: "absent" }] }, live)).toEqual(
      [
        `/plugins/lxc/profiles/0/name: profile "elsewhere" is the default project's, listed here only because the project this client is bound to has none of its own; op neither changes nor deletes it from this project`,
      ],
    );
  });

  it("waits for the delete of the container using it", async () => {
    const live = liveState([liveProfile("small", { usedBy: ["/1.0/instances/ct1"] })], {
      containers: [usingProfiles("ct1", ["default", "small"])],
    });
    const actions = await planOf(
      {
        profiles: [{ name: "small", ensure: "absent" }],
        containers: [container("ct1", ["default", "small"], { ensure: "absent" })],
      },
      live,
    );
    expect(actions.map((a) => `${a.kind} ${a.id} (${a.reason})`)).toEqual([
      "delete ct1 (ensure: absent)",
      "delete small (ensure: absent; after lxc container ct1)",
    ]);
    expect(actions[1]?.needs).toEqual([{ plugin: "lxc", resource: "container", id: "ct1" }]);
    expect(lxcPlugin.guard?.(actions, live, { allowUplink: false })).toEqual([]);
  });

  it("is refused while a container that stays uses it, naming both", async () => {
    const live = liveState([liveProfile("small", { usedBy: ["/1.0/instances/ct1"] })], {
      containers: [usingProfiles("ct1", ["default", "small"])],
    });
    const actions = await planOf({ profiles: [{ name: "small", ensure: "absent" }] }, live);
    expect(lxcPlugin.guard?.(actions, live, { allowUplink: false })).toEqual([
      {
        path: "/plugins/lxc/profiles/0",
        message: 'profile "small" is used by instance ct1, which stays',
        hint: "remove the profile from those containers' profiles first, or delete them in the same run",
      },
    ]);
  });

  it("of a profile op did not create is an adoption; default is never deleted", async () => {
    const theirs = liveProfile("theirs", { config: {}, managed: false });
    const gone = (adopt: boolean): LxcSection => ({
      profiles: [{ name: "theirs", ensure: "absent", adopt }],
    });
    expect(await planOf(gone(false), liveState([theirs]))).toMatchObject([
      { kind: "delete", adopt: { path: "/plugins/lxc/profiles/0", allowed: false } },
    ]);
    expect(await planOf(gone(true), liveState([theirs]))).toMatchObject([
      { kind: "delete", adopt: { path: "/plugins/lxc/profiles/0", allowed: true } },
    ]);
    const base = liveProfile("default", { config: {}, managed: false });
    expect(
      await problemsOf(
        { profiles: [{ name: "default", ensure: "absent", adopt: true }] },
        liveState([base]),
      ),
    ).toEqual([
      '/plugins/lxc/profiles/0/ensure: a project\'s "default" profile cannot be deleted (Incus removes it with its project)',
    ]);
  });
});

describe("what a container names", () => {
  it("waits for the creates of its profiles and project, and for them when its profiles change", async () => {
    const creates = await planOf(
      { profiles: [{ name: "small" }], containers: [container("ct1", ["default", "small"])] },
      liveState([]),
    );
    expect(creates.find((a) => a.resource === "container")?.needs).toEqual([
      { plugin: "lxc", resource: "profile", id: "small" },
    ]);
    const changed = await planOf(
      { profiles: [{ name: "small" }], containers: [container("ct1", ["default", "small"])] },
      liveState([], { containers: [usingProfiles("ct1", ["default"])] }),
    );
    expect(changed.find((a) => a.resource === "container")).toMatchObject({
      kind: "modify",
      needs: [{ plugin: "lxc", resource: "profile", id: "small" }],
    });
    // Nothing to wait for when the profile is already there.
    const existing = await planOf(
      { containers: [container("ct1", ["default", "small"])] },
      liveState([liveProfile("small")]),
    );
    expect(existing[0]?.needs).toBeUndefined();
  });

  it("is refused when a profile neither exists nor is declared, or is declared absent", async () => {
    const live = liveState([liveProfile("going")]);
    expect(
      await problemsOf(
        {
          profiles: [{ name: "going", ensure: "absent" }],
          containers: [container("ct1", ["default", "nowhere", "going"])],
        },
        live,
      ),
    ).toEqual([
      '/plugins/lxc/containers/0/profiles/1: profile "nowhere" neither exists nor is declared',
      '/plugins/lxc/containers/0/profiles/2: profile "going" is declared absent, but container ct1 uses it',
    ]);
  });

  it("finds the profiles of a project without its own in default, and refuses a missing project", async () => {
    const live = liveState([liveProfile("shared")], {
      projects: [
        project("default"),
        project("lean", { "features.profiles": "false" }),
        project("rich", { "features.profiles": "true" }),
      ],
    });
    const prepared = await prepareLxc(
      { containers: [container("ct1", ["default", "shared"])] },
      live,
      ctx,
    );
    const [base] = prepared.containers as [DesiredContainer];
    const inProject = (name: string) => ({ ...base, project: name });
    const problems = {
      lines: [] as string[],
      add(path: string, message: string) {
        this.lines.push(`${path}: ${message}`);
      },
    };
    const none = { present: [], absent: [] };
    checkContainerRefs(
      [inProject("lean"), inProject("rich"), inProject("ghost")],
      live,
      none,
      none,
      problems,
    );
    expect(problems.lines).toEqual([
      '/plugins/lxc/containers/0/profiles/1: profile "shared" in project "rich" neither exists nor is declared',
      '/plugins/lxc/containers/0/project: project "ghost" neither exists nor is declared',
    ]);
    expect(await problemsOf({ profiles: [{ name: "mine", project: "lean" }] }, live)).toEqual([
      '/plugins/lxc/profiles/0/project: profile "mine" is declared in project "lean", whose features.profiles is false: its containers use the profiles of project "default"; declare the profile without "project" (in "default"), or set features.profiles true on "lean"',
    ]);
  });

  it("is refused when its profile's project neither exists nor is declared", async () => {
    expect(
      await problemsOf({ profiles: [{ name: "p", project: "ghost" }] }, liveState([])),
    ).toEqual(['/plugins/lxc/profiles/0/project: project "ghost" neither exists nor is declared']);
  });
});

describe("op validate of profiles", () => {
  it("refuses a name twice in a project, one in a project without profiles, default absent", () => {
    expect(
      checkLxc(
        {
          projects: [{ name: "lean", config: { "features.profiles": "false" } }],
          profiles: [
            { name: "a" },
            { name: "a", project: "default" },
            { name: "a", project: "other" },
            { name: "b", project: "lean" },
            { name: "default", ensure: "absent" },
          ],
        },
        "/plugins/lxc",
      ),
    ).toEqual([
      '/plugins/lxc/profiles/1/name: profile "a" of project "default" is also declared by /plugins/lxc/profiles/0',
      '/plugins/lxc/profiles/3/project: profile "b" is declared in project "lean", whose features.profiles is false: its containers use the profiles of project "default"; declare the profile without "project" (in "default"), or set features.profiles true on "lean"',
      '/plugins/lxc/profiles/4/ensure: a project\'s "default" profile cannot be deleted (Incus removes it with its project)',
    ]);
  });
});

describe("op query --plugin lxc", () => {
  it("shows a projects and a profiles table after the containers', op's tag left to the op column", () => {
    const live = liveState([
      liveProfile("small", {
        project: "web",
        config: { "limits.memory": "128MiB", "user.op.managed": "true" },
        devices: { eth1: nic, data: { type: "disk", source: "/srv", path: "/srv" } },
        usedBy: ["/1.0/instances/ct1?project=web"],
      }),
    ]);
    const tables = reportLxc(live);
    expect(tables[0]?.title).toBeUndefined();
    const projects = tables.find((table) => table.title === "projects");
    const profiles = tables.find((table) => table.title === "profiles");
    expect(projects).toEqual({
      title: "projects",
      columns: ["name", "description", "config", "used by", "op"],
      rows: [["default", "-", "-", "0", "no"]],
    });
    expect(profiles?.title).toBe("profiles");
    expect(profiles?.rows).toEqual([
      ["default", "default", "-", "-", "-", "0", "no"],
      ["web", "small", "-", "limits.memory=128MiB", "data eth1", "1", "yes"],
    ]);
  });
});
