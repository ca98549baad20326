/**
 * `op export` of the lxc section, on every live host of the plan fixtures: the section
 * validates against the schema, and planning it against the same host plans nothing for the
 * containers op created. Owned only, it holds no container op did not create.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { validate_lxc } from "../../src/generated/validators.js";
import type { Sys } from "../../src/host/sys.js";
import type { Ctx } from "../../src/plugin.js";
import { diffLxc } from "./diff.js";
import { exportLxc } from "./export.js";
import { liveContainer, planOf, quietCtx } from "./lxc.testing.js";
import { prepareLxc } from "./prepare.js";
import type { LxcLive, LxcSection } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const hosts = readdirSync(root)
  .sort()
  .map((name) => ({
    name,
    live: JSON.parse(readFileSync(join(root, name, "live.json"), "utf8")) as LxcLive,
  }));

function exported(live: LxcLive, all: boolean): LxcSection {
  const { section } = exportLxc(live, { all });
  const lxc = (section ?? {}) as LxcSection;
  expect(validate_lxc(lxc), JSON.stringify(validate_lxc.errors)).toBe(true);
  return lxc;
}

describe("lxc export round trip", () => {
  for (const { name, live } of hosts) {
    it(name, async () => {
      const section = exported(live, false);
      const managed = live.containers.filter((c) => c.managed).map((c) => c.name);
      expect((section.containers ?? []).length).toBe(managed.length);
      // A NIC drifted in the kernel (renamed by hand) is told; the file says Incus's config.
      const drifted = exportLxc(live, { all: false })
        .notes.filter((note) => note.includes(": drifted: "))
        .map((note) => note.split(":")[0]?.replace("container ", ""));
      const planned = (await planOf(section, live)).map((action) => action.id);
      expect(planned).toEqual([...new Set(drifted)]);
    });
  }

  it("gives a container's devices, limits and op's tags back as the file's fields", async () => {
    const live: LxcLive = {
      bridges: { opexbr0: "linux", opexovs0: "ovs" },
      aliases: {},
      containers: [
        liveContainer("ct101", {
          id: "101",
          status: "running",
          config: {
            "user.op.managed": "true",
            "user.op.id": "101",
            "user.op.image": "op-test/busybox",
            "user.op.dns": "nameserver=198.18.0.53;search=lab.internal",
            "limits.cpu": "1",
            "limits.memory": "128MiB",
            "security.nesting": "true",
          },
          devices: {
            eth0: {
              type: "nic",
              nictype: "bridged",
              parent: "opexbr0",
              host_name: "vi101",
              name: "eth0",
            },
            eth1: {
              type: "nic",
              nictype: "bridged",
              parent: "opexovs0",
              host_name: "opexv1",
              name: "eth1",
              vlan: "10",
            },
            "mnt-srv-data": {
              type: "disk",
              source: "/srv/opex",
              path: "/srv/data",
              readonly: "true",
            },
            gpu: { type: "gpu" },
          },
        }),
        liveContainer("web", { managed: false, config: {}, image: undefined }),
      ],
    };
    const owned = exportLxc(live, { all: false });
    const [spec] = (owned.section as LxcSection).containers ?? [];
    expect(spec).toEqual({
      id: 101,
      image: "op-test/busybox",
      running: true,
      profiles: ["default"],
      config: { "limits.cpu": "1", "limits.memory": "128MiB", "security.nesting": "true" },
      properties: { nameserver: "198.18.0.53", searchdomain: "lab.internal" },
      nics: [
        { name: "eth0", type: "bridged", bridge: "opexbr0", host_name: "vi101" },
        { name: "eth1", type: "bridged", bridge: "opexovs0", host_name: "opexv1", vlan: 10 },
      ],
      mounts: [{ source: "/srv/opex", path: "/srv/data", readonly: true }],
    });
    expect(owned.notes).toEqual([
      "container ct101: device gpu (gpu) is not in op's format; left out, so applying the file removes it",
    ]);
    const all = exportLxc(live, { all: true });
    expect((all.section as LxcSection).containers?.map((c) => c.id)).toEqual([101, "web"]);
    expect(all.notes.some((n) => n.startsWith("container web: op did not create it"))).toBe(true);
  });
  it("gives the projects, profiles, networks and volumes op created, planning nothing", async () => {
    const fields = (managed: boolean, config: Record<string, string> = {}) => ({
      managed,
      description: managed ? "op's" : "",
      config: { ...config, ...(managed ? { "user.op.managed": "true" } : {}) },
      usedBy: [],
    });
    // Incus lists every feature of a project, given or not.
    const features = {
      "features.images": "true",
      "features.profiles": "true",
      "features.storage.volumes": "true",
      "features.storage.buckets": "true",
    };
    const live: LxcLive = {
      bridges: {},
      aliases: {},
      containers: [],
      pools: [{ name: "default", driver: "dir" }],
      projects: [
        { name: "default", ...fields(false, { "features.images": "true" }) },
        {
          name: "opex-p",
          ...fields(true, { ...features, "limits.instances": "3" }),
        },
      ],
      profiles: [
        { name: "default", project: "default", devices: {}, ...fields(false) },
        {
          name: "opex-prof",
          project: "opex-p",
          devices: { data: { type: "disk", source: "/srv/opex", path: "/data" } },
          ...fields(true, { "limits.memory": "64MiB" }),
        },
      ],
      networks: [
        {
          name: "opexn0",
          project: "default",
          type: "bridge",
          volatile: {},
          ...fields(true, { "ipv4.address": "198.18.61.1/24", "ipv6.address": "none" }),
        },
      ],
      volumes: [
        {
          pool: "default",
          name: "opex-v",
          project: "default",
          contentType: "filesystem",
          volatile: {},
          ...fields(true, { size: "32MiB" }),
        },
      ],
    };
    const { section, notes } = exportLxc(live, { all: false });
    expect(notes).toEqual([]);
    expect(section).toEqual({
      projects: [
        {
          name: "opex-p",
          description: "op's",
          config: { ...features, "limits.instances": "3" },
        },
      ],
      profiles: [
        {
          name: "opex-prof",
          project: "opex-p",
          description: "op's",
          config: { "limits.memory": "64MiB" },
          devices: { data: { type: "disk", source: "/srv/opex", path: "/data" } },
        },
      ],
      networks: [
        {
          name: "opexn0",
          description: "op's",
          config: { "ipv4.address": "198.18.61.1/24", "ipv6.address": "none" },
        },
      ],
      volumes: [
        {
          pool: "default",
          name: "opex-v",
          content_type: "filesystem",
          description: "op's",
          config: { size: "32MiB" },
        },
      ],
    });
    expect(validate_lxc(section), JSON.stringify(validate_lxc.errors)).toBe(true);
    // A host with no other addresses or links: the networks' overlap checks read its files.
    const sys = { link: () => undefined, text: () => undefined } as unknown as Sys;
    const ctx = { ...quietCtx, host: { sys } } as Ctx;
    expect(diffLxc(await prepareLxc(section as LxcSection, live, ctx), live)).toEqual([]);
    const all = exportLxc(live, { all: true });
    expect(all.notes).toEqual([
      'project default: op did not create it; op changes it (only the keys its entry gives) once the entry says "adopt": true',
      'profile default: op did not create it; op changes it (only the keys its entry gives) once the entry says "adopt": true',
    ]);
    const theirs = all.section as LxcSection;
    expect(validate_lxc(theirs), JSON.stringify(validate_lxc.errors)).toBe(true);
    expect(theirs.projects?.[0]).toEqual({
      name: "default",
      config: { "features.images": "true" },
    });
    expect(diffLxc(await prepareLxc(theirs, live, ctx), live)).toEqual([]);
  });
});
