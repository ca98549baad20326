/**
 * A whole Incus host in one file, on the real daemon (scripts/setup-incus.sh): two projects, two
 * managed networks, three profiles, two custom volumes and four containers with snapshot
 * schedules and boot priorities. It applies on a host that has none of them, re-applies as a
 * no-op, survives drift made by hand on each kind, and tears down with `ensure: absent` leaving
 * the volumes. Every object is the test's own (`optest-…`, `optn…`) and is removed after, also
 * when the test fails; no run here uses `prune`.
 */
import { randomInt } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import type { Action } from "../src/plugin.js";
import {
  deleteIfPresent,
  incus,
  isNotFound,
  plan,
  reconcile,
  removeContainers,
  removeProjectInstances,
  sh,
  testImage,
  uid,
} from "./support/lxc.js";

const tag = uid();
const projectA = `optest-${tag}a`;
const projectB = `optest-${tag}b`;
const netA = `optn${tag}a`;
const netB = `optn${tag}b`;
const small = `optest-${tag}-small`;
const volumeA = `optest-${tag}-va`;
const volumeB = `optest-${tag}-vb`;
const names = {
  a1: `optest-${tag}-a1`,
  b1: `optest-${tag}-b1`,
  d1: `optest-${tag}-d1`,
  d2: `optest-${tag}-d2`,
};

/** Two /24s of 198.18.0.0/15 no other test of this file uses (the third octet drawn apart). */
const octet = randomInt(100, 150);
const subnetA = `198.18.${octet}`;
const subnetB = `198.18.${octet + 50}`;

afterAll(async () => {
  for (const project of [projectA, projectB])
    await removeProjectInstances(project).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  await removeContainers([names.d1, names.d2]);
  for (const project of [projectA, projectB])
    await deleteIfPresent(`/1.0/profiles/base?project=${project}`);
  await deleteIfPresent(`/1.0/profiles/${small}`);
  for (const volume of [volumeA, volumeB])
    await deleteIfPresent(`/1.0/storage-pools/default/volumes/custom/${volume}`);
  for (const project of [projectA, projectB]) await deleteIfPresent(`/1.0/projects/${project}`);
  for (const network of [netA, netB]) await deleteIfPresent(`/1.0/networks/${network}`);
});

/** A project of its own profiles, using the default project's images, networks and volumes. */
const project = (name: string) => ({
  name,
  description: "op test tenant",
  config: {
    "features.images": "false",
    "features.profiles": "true",
    "features.storage.volumes": "false",
    "limits.instances": "4",
  },
});

const network = (name: string, subnet: string) => ({
  name,
  ipv4_address: `${subnet}.1/24`,
  ipv4_nat: false,
  ipv4_dhcp: true,
  ipv6_address: "none",
});

/** A project's profile giving its containers a root disk and eth0 on `net`. */
const baseProfile = (projectName: string, net: string) => ({
  name: "base",
  project: projectName,
  config: { "limits.memory": "128MiB" },
  devices: {
    root: { type: "disk", pool: "default", path: "/" },
    eth0: { type: "nic", network: net, name: "eth0" },
  },
});

const container = (name: string, fields: Record<string, unknown>, priority: number) => ({
  id: name,
  image: testImage,
  stop_timeout: 5,
  snapshots: { schedule: "0 3 * * *", expiry: "7d" },
  boot: { autostart: true, priority, stop_priority: priority },
  ...fields,
});

const host = {
  projects: [project(projectA), project(projectB)],
  networks: [network(netA, subnetA), network(netB, subnetB)],
  profiles: [
    baseProfile(projectA, netA),
    baseProfile(projectB, netB),
    { name: small, config: { "limits.cpu": "1" } },
  ],
  volumes: [
    { pool: "default", name: volumeA, config: { "user.purpose": "data" } },
    { pool: "default", name: volumeB },
  ],
  containers: [
    container(names.a1, { project: projectA, profiles: ["base"] }, 30),
    container(names.b1, { project: projectB, profiles: ["base"], running: false }, 20),
    container(
      names.d1,
      {
        profiles: ["default", small],
        network: netA,
        volumes: [{ volume: volumeA, path: "/srv/data" }],
      },
      10,
    ),
    container(
      names.d2,
      { network: netB, volumes: [{ volume: volumeB, path: "/srv/b" }], running: false },
      0,
    ),
  ],
};

const words = (actions: readonly Action[]) =>
  actions.map((action) => `${action.kind} ${action.resource} ${action.id}`).sort();

async function config(path: string): Promise<Record<string, string>> {
  return (await incus.request<{ config: Record<string, string> }>("GET", path)).config;
}

describe("a whole Incus host in one file", () => {
  it("applies on a clean host, re-applies as a no-op, fixes drift of every kind, and tears down keeping the volumes", async () => {
    const created = await reconcile(host);
    expect(Object.fromEntries(created.errors)).toEqual({});
    expect(created.remaining).toEqual([]);
    expect(words(created.actions)).toEqual(
      [
        `create project ${projectA}`,
        `create project ${projectB}`,
        `create network ${netA}`,
        `create network ${netB}`,
        `create profile ${projectA}/base`,
        `create profile ${projectB}/base`,
        `create profile ${small}`,
        `create volume default/${volumeA}`,
        `create volume default/${volumeB}`,
        `create container ${projectA}/${names.a1}`,
        `create container ${projectB}/${names.b1}`,
        `create container ${names.d1}`,
        `create container ${names.d2}`,
      ].sort(),
    );
    // A container waits for what it uses; a project's profile for its project.
    const byId = new Map(
      created.actions.map((action) => [`${action.resource} ${action.id}`, action]),
    );
    const needs = (key: string) =>
      (byId.get(key)?.needs ?? []).map((ref) => `${ref.resource} ${ref.id}`).sort();
    expect(needs(`container ${projectA}/${names.a1}`)).toEqual([
      `profile ${projectA}/base`,
      `project ${projectA}`,
    ]);
    expect(needs(`container ${names.d1}`)).toEqual(
      [`network ${netA}`, `profile ${small}`, `volume default/${volumeA}`].sort(),
    );
    // A profile waits for its project and for the network its NIC names (Incus checks it).
    expect(needs(`profile ${projectB}/base`)).toEqual(
      expect.arrayContaining([`project ${projectB}`, `network ${netB}`]),
    );

    const a1 = await config(`/1.0/instances/${names.a1}?project=${projectA}`);
    expect(a1).toMatchObject({
      "snapshots.schedule": "0 3 * * *",
      "snapshots.expiry": "7d",
      "boot.autostart": "true",
      "boot.autostart.priority": "30",
      "boot.stop.priority": "30",
    });
    const d1 = await incus.request<{ devices: Record<string, Record<string, string>> }>(
      "GET",
      `/1.0/instances/${names.d1}`,
    );
    expect(d1.devices.eth0).toMatchObject({ type: "nic", network: netA });
    expect(Object.values(d1.devices)).toContainEqual({
      type: "disk",
      pool: "default",
      source: volumeA,
      path: "/srv/data",
    });

    expect(await plan(host)).toEqual([]);

    // Drift by hand, one change of each kind.
    sh("incus", ["profile", "set", "base", "limits.memory", "256MiB", "--project", projectA]);
    sh("incus", ["profile", "set", small, "limits.cpu", "2"]);
    sh("incus", ["network", "set", netA, "ipv4.dhcp", "false"]);
    sh("incus", ["storage", "volume", "set", "default", volumeA, "user.purpose", "scratch"]);
    sh("incus", ["project", "set", projectB, "limits.instances", "9"]);
    sh("incus", ["config", "unset", names.d2, "snapshots.schedule"]);
    const drift = await plan(host);
    expect(words(drift)).toEqual(
      [
        `modify profile ${projectA}/base`,
        `modify profile ${small}`,
        `modify network ${netA}`,
        `modify volume default/${volumeA}`,
        `modify project ${projectB}`,
        `modify container ${names.d2}`,
      ].sort(),
    );
    const fixed = await reconcile(host);
    expect(Object.fromEntries(fixed.errors)).toEqual({});
    expect(fixed.remaining).toEqual([]);
    expect(await plan(host)).toEqual([]);
    expect((await config(`/1.0/networks/${netA}`))["ipv4.dhcp"]).toBe("true");
    expect((await config(`/1.0/instances/${names.d2}`))["snapshots.schedule"]).toBe("0 3 * * *");

    // Everything but the volumes declared absent: containers first, then what they used.
    const absent = <T extends object>(list: T[]) =>
      list.map((entry) => ({ ...entry, ensure: "absent" }));
    const teardown = {
      projects: absent(host.projects),
      networks: absent(host.networks),
      profiles: absent(host.profiles),
      volumes: host.volumes,
      containers: host.containers.map((entry) => ({ ...entry, ensure: "absent" })),
    };
    const gone = await reconcile(teardown);
    expect(Object.fromEntries(gone.errors)).toEqual({});
    expect(words(gone.actions)).toEqual(
      [
        `delete project ${projectA}`,
        `delete project ${projectB}`,
        `delete network ${netA}`,
        `delete network ${netB}`,
        `delete profile ${projectA}/base`,
        `delete profile ${projectB}/base`,
        `delete profile ${small}`,
        `delete container ${projectA}/${names.a1}`,
        `delete container ${projectB}/${names.b1}`,
        `delete container ${names.d1}`,
        `delete container ${names.d2}`,
      ].sort(),
    );
    expect(await plan(teardown)).toEqual([]);
    const left = await incus.request<string[]>("GET", "/1.0/projects");
    expect(left.some((url) => url.includes(`optest-${tag}`))).toBe(false);
    for (const volume of [volumeA, volumeB]) {
      const kept = await incus.request<{ used_by: string[] }>(
        "GET",
        `/1.0/storage-pools/default/volumes/custom/${volume}`,
      );
      expect(kept.used_by).toEqual([]);
    }
  });
});
