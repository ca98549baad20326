/**
 * System tests of `plugins.lxc.projects` and `plugins.lxc.profiles` on the real Incus daemon
 * (scripts/setup-incus.sh): create, re-apply as a no-op, drift made by hand and fixed, the
 * adopt rule, in-use refusals, and the order of deletes. Every project, profile and container
 * here is the test's own (`optest-…`) and is removed after, also when a test fails. No test
 * here uses `prune`: it would reach other tests' objects on this shared daemon.
 */
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import type { Action } from "../src/plugin.js";
import {
  deleteIfPresent,
  incus,
  isNotFound,
  plan,
  reconcile,
  removeContainers,
  sh,
  testId,
  testImage,
  uid,
} from "./support/lxc.js";

const projects: string[] = [];
const profiles: { project: string; name: string }[] = [];
const containers: string[] = [];

afterAll(async () => {
  await removeContainers(containers);
  for (const { project, name } of profiles)
    await deleteIfPresent(`/1.0/profiles/${name}?project=${project}`);
  for (const project of projects) await deleteIfPresent(`/1.0/projects/${project}`);
});

function projectName(): string {
  const name = `optest-${uid()}`;
  projects.push(name);
  return name;
}

function profileName(project = "default"): string {
  const name = `optest-${uid()}`;
  profiles.push({ project, name });
  return name;
}

function containerEntry(
  fields: Record<string, unknown>,
): { name: string } & Record<string, unknown> {
  const name = `optest-${uid()}`;
  containers.push(name);
  return { id: testId(), name, image: testImage, running: false, stop_timeout: 10, ...fields };
}

interface IncusObject {
  config: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  description: string;
}

async function getObject(path: string): Promise<IncusObject | undefined> {
  return incus.request<IncusObject>("GET", path).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
}

const words = (actions: readonly Action[]) =>
  actions.map((a) => `${a.kind} ${a.resource} ${a.id}`).sort();

async function refusal(section: object): Promise<OpError> {
  const error = await plan(section).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return error as OpError;
}

describe("projects and profiles", () => {
  it("creates a project and a profile in it, re-applies as a no-op, and fixes drift made by hand", async () => {
    const project = projectName();
    const profile = profileName(project);
    const section = {
      projects: [{ name: project, description: "op test", config: { "limits.instances": "5" } }],
      profiles: [
        {
          name: profile,
          project,
          description: "small",
          config: { "limits.memory": "128MiB" },
          devices: { eth1: { type: "nic", network: "opincbr0", name: "eth1" } },
        },
      ],
    };
    const first = await reconcile(section);
    expect(first.errors).toEqual(new Map());
    expect(words(first.actions)).toEqual([
      `create profile ${project}/${profile}`,
      `create project ${project}`,
    ]);
    // The profile is created in the project, so it waits for it (and for the network its NIC
    // names, in the project or in default, had that network an action in this run).
    expect(first.actions.find((a) => a.resource === "profile")?.needs).toEqual([
      { plugin: "lxc", resource: "project", id: project },
      { plugin: "lxc", resource: "network", id: `${project}/opincbr0` },
      { plugin: "lxc", resource: "network", id: "opincbr0" },
    ]);
    expect(first.remaining).toEqual([]);
    const made = await getObject(`/1.0/projects/${project}`);
    expect(made?.config).toMatchObject({
      "limits.instances": "5",
      "user.op.managed": "true",
      "features.profiles": "true",
    });
    const madeProfile = await getObject(`/1.0/profiles/${profile}?project=${project}`);
    expect(madeProfile?.config).toEqual({ "limits.memory": "128MiB", "user.op.managed": "true" });
    expect(madeProfile?.devices).toEqual({
      eth1: { type: "nic", network: "opincbr0", name: "eth1" },
    });

    expect(await plan(section)).toEqual([]);

    sh("incus", ["profile", "set", profile, "limits.memory", "256MiB", "--project", project]);
    sh("incus", ["project", "set", project, "limits.instances", "7"]);
    sh("incus", [
      ...["profile", "device", "add", profile, "tmp", "disk"],
      ...["source=/tmp", "path=/mnt/tmp", "--project", project],
    ]);
    const drift = await plan(section);
    expect(drift.map((a) => `${a.kind} ${a.id}: ${a.reason}`).sort()).toEqual([
      `modify ${project}/${profile}: config.limits.memory 256MiB → 128MiB, remove device tmp: /tmp at /mnt/tmp`,
      `modify ${project}: config.limits.instances 7 → 5`,
    ]);
    const fixed = await reconcile(section);
    expect(fixed.errors).toEqual(new Map());
    expect(fixed.remaining).toEqual([]);
    expect(await plan(section)).toEqual([]);
    expect((await getObject(`/1.0/profiles/${profile}?project=${project}`))?.devices).toEqual({
      eth1: { type: "nic", network: "opincbr0", name: "eth1" },
    });

    // Both absent: the project's delete waits for its profile's.
    const gone = await reconcile({
      projects: [{ name: project, ensure: "absent" }],
      profiles: [{ name: profile, project, ensure: "absent" }],
    });
    expect(gone.errors).toEqual(new Map());
    expect(gone.actions.find((a) => a.resource === "project")?.needs).toEqual([
      { plugin: "lxc", resource: "profile", id: `${project}/${profile}` },
    ]);
    expect(await getObject(`/1.0/projects/${project}`)).toBeUndefined();
  });

  it("changes or deletes a profile op did not create only by adoption, and never tags it", async () => {
    const profile = profileName();
    sh("incus", ["profile", "create", profile]);
    sh("incus", ["profile", "set", profile, "environment.KEEP", "yes"]);
    const declared = { name: profile, config: { "limits.cpu": "1" } };

    const error = await refusal({ profiles: [declared] });
    expect(error.details).toEqual([
      `/plugins/lxc/profiles/0: lxc profile ${profile} exists and op did not create it, so op will not take it over unless it is adopted`,
    ]);

    const adopted = await reconcile({ profiles: [{ ...declared, adopt: true }] });
    expect(adopted.errors).toEqual(new Map());
    expect(words(adopted.actions)).toEqual([`modify profile ${profile}`]);
    // Only the file's keys are op's: the rest stays, and no ownership tag is added.
    expect((await getObject(`/1.0/profiles/${profile}`))?.config).toEqual({
      "environment.KEEP": "yes",
      "limits.cpu": "1",
    });
    expect(await plan({ profiles: [{ ...declared, adopt: true }] })).toEqual([]);

    const noDelete = await refusal({ profiles: [{ name: profile, ensure: "absent" }] });
    expect(noDelete.details).toEqual([
      `/plugins/lxc/profiles/0: lxc profile ${profile} exists and op did not create it, so op will not delete it unless it is adopted`,
    ]);
    expect(await getObject(`/1.0/profiles/${profile}`)).toBeDefined();
    const deleted = await reconcile({
      profiles: [{ name: profile, ensure: "absent", adopt: true }],
    });
    expect(deleted.errors).toEqual(new Map());
    expect(words(deleted.actions)).toEqual([`delete profile ${profile}`]);
    expect(await getObject(`/1.0/profiles/${profile}`)).toBeUndefined();
  });

  it("creates a profile before the container using it, refuses deleting it while the container stays, and deletes it after the container", async () => {
    const profile = profileName();
    const ct = containerEntry({ profiles: ["default", profile] });
    const section = {
      profiles: [{ name: profile, config: { "limits.memory": "128MiB" } }],
      containers: [ct],
    };
    const made = await reconcile(section);
    expect(made.errors).toEqual(new Map());
    expect(made.actions.find((a) => a.resource === "container")?.needs).toEqual([
      { plugin: "lxc", resource: "profile", id: profile },
    ]);
    const live = await incus.request<{ profiles: string[] }>("GET", `/1.0/instances/${ct.name}`);
    expect(live.profiles).toEqual(["default", profile]);

    // The container stays but the profile goes: refused before anything changes.
    const error = await refusal({
      profiles: [{ name: profile, ensure: "absent" }],
      containers: [{ ...ct, profiles: ["default"] }],
    });
    expect(error.message).toContain(
      `/plugins/lxc/profiles/0: profile "${profile}" is used by instance ${ct.name}, which stays`,
    );
    expect(await getObject(`/1.0/profiles/${profile}`)).toBeDefined();
    expect(
      (await incus.request<{ profiles: string[] }>("GET", `/1.0/instances/${ct.name}`)).profiles,
    ).toEqual(["default", profile]);

    // Both go: the profile's delete waits for the container's.
    const gone = await reconcile({
      profiles: [{ name: profile, ensure: "absent" }],
      containers: [{ ...ct, ensure: "absent" }],
    });
    expect(gone.errors).toEqual(new Map());
    expect(gone.actions.find((a) => a.resource === "profile")?.needs).toEqual([
      { plugin: "lxc", resource: "container", id: ct.name },
    ]);
    expect(await getObject(`/1.0/profiles/${profile}`)).toBeUndefined();
    expect(await getObject(`/1.0/instances/${ct.name}`)).toBeUndefined();
  });

  it("refuses deleting a project that still holds an instance, naming both", async () => {
    const project = projectName();
    // Images and profiles of `default`, so a busybox instance can be made in it by hand.
    const section = {
      projects: [
        {
          name: project,
          config: { "features.images": "false", "features.profiles": "false" },
        },
      ],
    };
    expect((await reconcile(section)).errors).toEqual(new Map());
    const held = `optest-${uid()}`;
    sh("incus", ["create", testImage, held, "-q", "--project", project]);
    try {
      const error = await refusal({ projects: [{ name: project, ensure: "absent" }] });
      expect(error.details).toEqual([
        `/plugins/lxc/projects/0: project "${project}" still holds instance ${held} (project ${project})`,
      ]);
      expect(await getObject(`/1.0/projects/${project}`)).toBeDefined();
    } finally {
      sh("incus", ["delete", "--force", held, "--project", project]);
    }
    expect((await reconcile({ projects: [{ name: project, ensure: "absent" }] })).errors).toEqual(
      new Map(),
    );
    expect(await getObject(`/1.0/projects/${project}`)).toBeUndefined();
  });

  it("creates a project, its profile and a container using both in order, and deletes them in the reverse", async () => {
    const project = projectName();
    const profile = profileName(project);
    const name = `optest-${uid()}`;
    const ct = { id: testId(), name, project, image: testImage, running: false, stop_timeout: 10 };
    const objects = {
      // The images of `default` (the busybox image); profiles of its own.
      projects: [{ name: project, config: { "features.images": "false" } }],
      profiles: [
        {
          name: profile,
          project,
          devices: { root: { type: "disk", path: "/", pool: "default" } },
        },
      ],
    };
    try {
      const made = await reconcile({ ...objects, containers: [{ ...ct, profiles: [profile] }] });
      expect(made.errors).toEqual(new Map());
      const needsOf = (resource: string) =>
        made.actions
          .find((a) => a.resource === resource)
          ?.needs?.map((n) => `${n.resource} ${n.id}`);
      expect(needsOf("profile")).toEqual([`project ${project}`]);
      expect(needsOf("container")).toEqual([`project ${project}`, `profile ${project}/${profile}`]);
      expect(made.remaining).toEqual([]);
      expect(
        (
          await incus.request<{ profiles: string[] }>(
            "GET",
            `/1.0/instances/${name}?project=${project}`,
          )
        ).profiles,
      ).toEqual([profile]);

      const gone = await reconcile({
        projects: [{ name: project, ensure: "absent" }],
        profiles: [{ name: profile, project, ensure: "absent" }],
        containers: [{ ...ct, ensure: "absent" }],
      });
      expect(gone.errors).toEqual(new Map());
      expect(
        gone.actions.map((a) => `${a.kind} ${a.resource} ${a.id} (${a.reason})`).sort(),
      ).toEqual([
        `delete container ${project}/${name} (ensure: absent)`,
        `delete profile ${project}/${profile} (ensure: absent; after lxc container ${project}/${name})`,
        `delete project ${project} (ensure: absent; after lxc container ${project}/${name}, lxc profile ${project}/${profile})`,
      ]);
      expect(await getObject(`/1.0/projects/${project}`)).toBeUndefined();
    } finally {
      await deleteIfPresent(`/1.0/instances/${name}?project=${project}`);
    }
  });

  it("refuses a container naming a profile or project that neither exists nor is declared", async () => {
    const missing = `optest-${uid()}`;
    const ct = containerEntry({ profiles: ["default", missing] });
    const error = await refusal({ containers: [ct] });
    expect(error.details).toEqual([
      `/plugins/lxc/containers/0/profiles/1: profile "${missing}" neither exists nor is declared`,
    ]);
    const inNowhere = containerEntry({ project: missing });
    expect((await refusal({ containers: [inNowhere] })).details).toEqual([
      `/plugins/lxc/containers/0/project: project "${missing}" neither exists nor is declared`,
    ]);
    const profileInNowhere = await refusal({ profiles: [{ name: missing, project: missing }] });
    expect(profileInNowhere.details).toEqual([
      `/plugins/lxc/profiles/0/project: project "${missing}" neither exists nor is declared`,
    ]);
  });
});
