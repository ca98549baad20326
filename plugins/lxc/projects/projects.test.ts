/**
 * Projects from the file to the plan, on hand-written live states: who holds a project, the
 * config compared (Incus's feature defaults are not drift), deletes only of op's empty
 * projects, and what a delete waits for.
 */
import { describe, expect, it } from "vitest";
import { adoptionProblems } from "../../../src/engine/reconcile.js";
import { checkLxc } from "../check.js";
import { lxcPlugin } from "../index.js";
import { planOf } from "../lxc.testing.js";
import type { LxcLive, LxcSection } from "../types.js";
import { guardProjects } from "./guard.js";
import type { LiveProject } from "./types.js";

const featureDefaults = {
  "features.images": "true",
  "features.profiles": "true",
  "features.storage.buckets": "true",
  "features.storage.volumes": "true",
};

function liveProject(name: string, fields: Partial<LiveProject> = {}): LiveProject {
  return {
    name,
    description: "",
    config: { ...featureDefaults, "user.op.managed": "true" },
    usedBy: [`/1.0/profiles/default?project=${name}`],
    managed: true,
    ...fields,
  };
}

const defaultProject = liveProject("default", {
  config: featureDefaults,
  managed: false,
  usedBy: ["/1.0/profiles/default"],
});

function liveState(projects: LiveProject[], fields: Partial<LxcLive> = {}): LxcLive {
  return { containers: [], bridges: {}, aliases: {}, projects, profiles: [], ...fields };
}

describe("a project op owns", () => {
  it("is created with op's tag and Incus's feature defaults, and then is no drift", async () => {
    const section = { projects: [{ name: "web", config: { "limits.instances": 5 } }] };
    const [create] = await planOf(section, liveState([defaultProject]));
    expect(create).toMatchObject({ kind: "create", resource: "project", id: "web" });
    expect(create?.kind === "create" && create.after).toMatchObject({
      config: { ...featureDefaults, "limits.instances": "5", "user.op.managed": "true" },
      description: "",
      holding: "owned",
    });
    const made = liveProject("web", {
      config: { ...featureDefaults, "limits.instances": "5", "user.op.managed": "true" },
    });
    expect(await planOf(section, liveState([defaultProject, made]))).toEqual([]);
  });

  it("has every key compared: one set by hand is removed, a changed one set back", async () => {
    const section = { projects: [{ name: "web", config: { "limits.instances": "5" } }] };
    const drifted = liveProject("web", {
      config: {
        ...featureDefaults,
        "limits.instances": "7",
        "user.note": "by hand",
        "user.op.managed": "true",
      },
      description: "changed",
    });
    const [modify] = await planOf(section, liveState([drifted]));
    expect(modify?.kind === "modify" && modify.changes).toEqual([
      { path: "config.limits.instances", before: "7", after: "5" },
      { path: "config.user.note", before: "by hand" },
      { path: "description", before: "changed", after: "" },
    ]);
  });

  it("keeps a feature the file turns off", async () => {
    const section = { projects: [{ name: "web", config: { "features.profiles": false } }] };
    const [create] = await planOf(section, liveState([]));
    expect(
      create?.kind === "create" &&
        create.resource === "project" &&
        create.after.config["features.profiles"],
    ).toBe("false");
  });
});

describe("a project op did not create", () => {
  const foreign = liveProject("theirs", {
    config: { ...featureDefaults, "limits.cpu": "4" },
    managed: false,
  });

  it("is an adoption without adopt, which the engine refuses at the entry", async () => {
    const section = { projects: [{ name: "theirs", config: { "limits.cpu": "2" } }] };
    const plan = await planOf(section, liveState([foreign]));
    expect(plan).toMatchObject([
      { kind: "modify", adopt: { path: "/plugins/lxc/projects/0", allowed: false } },
    ]);
    expect(adoptionProblems(plan, { allowUplink: false })).toMatchObject([
      { path: "/plugins/lxc/projects/0" },
    ]);
    // Naming it with nothing to change adopts nothing.
    expect(await planOf({ projects: [{ name: "theirs" }] }, liveState([foreign]))).toEqual([]);
  });

  it("with adopt, has only the file's keys compared and written, and gets no tag", async () => {
    const section = {
      projects: [{ name: "theirs", adopt: true, config: { "limits.instances": "3" } }],
    };
    const [modify] = await planOf(section, liveState([foreign]));
    expect(modify?.kind === "modify" && modify.changes).toEqual([
      { path: "config.limits.instances", after: "3" },
    ]);
    expect(
      modify?.resource === "project" && modify.kind === "modify" && modify.after.config,
    ).toEqual({
      "limits.instances": "3",
    });
  });

  it("is deleted only by adoption; prune passes it by", async () => {
    const gone = (adopt: boolean): LxcSection => ({
      projects: [{ name: "theirs", ensure: "absent", adopt }],
    });
    const empty = { ...foreign, usedBy: [] };
    expect(await planOf(gone(false), liveState([empty]))).toMatchObject([
      { kind: "delete", adopt: { path: "/plugins/lxc/projects/0", allowed: false } },
    ]);
    expect(await planOf(gone(true), liveState([empty]))).toMatchObject([
      { kind: "delete", adopt: { path: "/plugins/lxc/projects/0", allowed: true } },
    ]);
    expect(await planOf({ prune: true }, liveState([defaultProject, foreign]))).toEqual([]);
  });
});

describe("deleting a project", () => {
  it("prunes op's projects that left the file, never default", async () => {
    const actions = await planOf(
      { prune: true },
      liveState([{ ...defaultProject, managed: true }, liveProject("old")]),
    );
    expect(actions.map((a) => `${a.kind} ${a.id} (${a.reason})`)).toEqual([
      "delete old (not in the file (prune))",
    ]);
  });

  it("waits for the deletes of what it holds, and is refused while it holds more", async () => {
    const held = liveProject("web", {
      usedBy: [
        "/1.0/profiles/default?project=web",
        "/1.0/profiles/small?project=web",
        "/1.0/instances/ct1?project=web",
      ],
    });
    const live = liveState([held], {
      profiles: [
        {
          name: "small",
          project: "web",
          description: "",
          config: { "user.op.managed": "true" },
          devices: {},
          usedBy: [],
          managed: true,
        },
      ],
    });
    const actions = await planOf(
      {
        projects: [{ name: "web", ensure: "absent" }],
        profiles: [{ name: "small", project: "web", ensure: "absent" }],
      },
      live,
    );
    const remove = actions.find((a) => a.resource === "project");
    expect(remove?.needs).toEqual([{ plugin: "lxc", resource: "profile", id: "web/small" }]);
    expect(remove?.reason).toBe("ensure: absent; after lxc profile web/small");
    // ct1 is not deleted in this run: refused, naming it; the project's own default profile
    // (which Incus deletes with it) and the profile deleted too are not in the way.
    expect(lxcPlugin.guard?.(actions, live, { allowUplink: false })).toEqual([
      {
        path: "/plugins/lxc/projects/0",
        message: 'project "web" still holds instance ct1 (project web)',
        hint: "op deletes only empty projects: delete what it holds first, or declare it absent in the same file",
      },
    ]);
  });

  it("is allowed when what it held goes in the same run", () => {
    const held = liveProject("web", {
      usedBy: ["/1.0/instances/ct1?project=web", "/1.0/networks/n1?project=web"],
    });
    const networkDelete = {
      kind: "delete" as const,
      plugin: "lxc",
      resource: "network" as const,
      id: "web/n1",
      reason: "",
      before: {} as never,
    };
    const containerDelete = {
      kind: "delete" as const,
      plugin: "lxc",
      resource: "container" as const,
      id: "web/ct1",
      reason: "",
      before: {} as never,
    };
    const projectDelete = {
      kind: "delete" as const,
      plugin: "lxc",
      resource: "project" as const,
      id: "web",
      reason: "",
      before: { project: held, path: "/plugins/lxc/projects/0" },
    };
    expect(guardProjects([containerDelete, networkDelete, projectDelete])).toEqual([]);
    expect(guardProjects([containerDelete, projectDelete])).toEqual([
      expect.objectContaining({ message: 'project "web" still holds network n1 (project web)' }),
    ]);
    expect(guardProjects([projectDelete])).toHaveLength(1);
  });
});

describe("op validate of projects", () => {
  it("refuses a name twice, an unknown feature, and deleting default", () => {
    expect(
      checkLxc(
        {
          projects: [
            { name: "a" },
            { name: "a", config: { "features.everything": "true" } },
            { name: "default", config: { "limits.instances": "3" } },
            { name: "default", ensure: "absent", adopt: true, description: "x" },
          ],
        },
        "/plugins/lxc",
      ),
    ).toEqual([
      '/plugins/lxc/projects/1/name: project "a" is also declared by /plugins/lxc/projects/0',
      '/plugins/lxc/projects/1/config/features.everything: "features.everything" is not a project feature Incus knows (features.images, features.profiles, features.storage.volumes, features.storage.buckets, features.networks, features.networks.zones)',
      '/plugins/lxc/projects/3/name: project "default" is also declared by /plugins/lxc/projects/2',
      '/plugins/lxc/projects/3/ensure: project "default" is Incus\'s own: op never deletes it',
      '/plugins/lxc/projects/3/description: op changes only the config of project "default"; leave its description out',
    ]);
  });
});
