/**
 * Pre-images of projects, profiles, networks, volumes and image aliases (preimage-objects.ts),
 * on a hand-written host: what the run changes or deletes is written as it was, what it creates
 * absent; the section validates and plans nothing against the host it was taken from; and
 * each change the file's form cannot take back is refused with its reason.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { validate_lxc } from "../../src/generated/validators.js";
import { createSys } from "../../src/host/sys.js";
import type { Ctx } from "../../src/plugin.js";
import { diffLxc } from "./diff.js";
import { quietCtx } from "./lxc.testing.js";
import { ownedFields } from "./objects.testing.js";
import { lxcImage, lxcScope } from "./preimage.js";
import { prepareLxc } from "./prepare.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";

// A network's prepare reads the host's addresses: a fixture tree with none.
const root = mkdtempSync(join(tmpdir(), "op-lxc-preimage-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "proc/net"), { recursive: true });
writeFileSync(join(root, "proc/net/fib_trie"), "Main:\n");
const ctx = { ...quietCtx, host: { sys: createSys(root) } } as unknown as Ctx;

async function planOf(section: LxcSection, live: LxcLive): Promise<LxcAction[]> {
  return diffLxc(await prepareLxc(section, live, ctx), live);
}

const before: LxcLive = {
  bridges: {},
  aliases: {},
  containers: [],
  pools: [{ name: "default", driver: "dir" }],
  projects: [
    {
      name: "default",
      managed: false,
      description: "Default Incus project",
      config: { "features.images": "true", "features.profiles": "true" },
      usedBy: [],
    },
    {
      name: "oprl1",
      managed: true,
      description: "",
      config: {
        "user.op.managed": "true",
        "features.images": "true",
        "features.profiles": "true",
        "features.storage.volumes": "true",
        "features.storage.buckets": "true",
        "user.tier": "one",
      },
      usedBy: [],
    },
  ],
  profiles: [
    {
      project: "default",
      managed: true,
      usedBy: [],
      name: "oprl-old",
      description: "",
      config: { "user.op.managed": "true", "limits.cpu": "1" },
      devices: {},
    },
  ],
  networks: [
    {
      ...ownedFields(),
      name: "oprlnet",
      type: "bridge",
      config: { "user.op.managed": "true", "ipv4.address": "198.18.9.1/24" },
    },
  ],
  volumes: [
    {
      ...ownedFields(),
      pool: "default",
      name: "oprl-data",
      contentType: "filesystem",
      config: { "user.op.managed": "true", size: "16MiB" },
    },
  ],
};

const kinds = (actions: readonly LxcAction[]) =>
  actions.map((a) => `${a.kind} ${a.resource} ${a.id}`).sort();

describe("pre-images of Incus objects", () => {
  it("write a changed project and a deleted profile as they were, and created ones absent", async () => {
    const run: LxcSection = {
      projects: [{ name: "oprl1", description: "now described", config: { "user.tier": "two" } }],
      profiles: [
        { name: "oprl-old", ensure: "absent" },
        { name: "oprl-new", config: { "limits.memory": "64MiB" } },
      ],
      volumes: [{ pool: "default", name: "oprl-more", size: "8MiB" }],
      networks: [{ name: "oprlnet", ipv4_address: "198.18.9.1/24" }],
    };
    const actions = (await planOf(run, before)) as LxcAction[];
    expect(kinds(actions)).toEqual([
      "create profile oprl-new",
      "create volume default/oprl-more",
      "delete profile oprl-old",
      "modify project oprl1",
    ]);
    const image = await lxcImage(lxcScope(actions), before, ctx);
    expect(image.refused).toEqual([]);
    const section = image.section as LxcSection;
    expect(validate_lxc(section), JSON.stringify(validate_lxc.errors)).toBe(true);
    expect(section.projects).toEqual([
      {
        name: "oprl1",
        // Export leaves an empty description out; the run set one, so the undo writes "".
        description: "",
        config: {
          "features.images": "true",
          "features.profiles": "true",
          "features.storage.volumes": "true",
          "features.storage.buckets": "true",
          "user.tier": "one",
        },
      },
    ]);
    expect(section.profiles).toEqual([
      { name: "oprl-new", ensure: "absent" },
      { name: "oprl-old", config: { "limits.cpu": "1" } },
    ]);
    expect(section.volumes).toEqual([{ pool: "default", name: "oprl-more", ensure: "absent" }]);
    expect(section.containers).toBeUndefined();
    // Against the host it was taken from, the pre-image changes nothing.
    expect(await planOf(section, before)).toEqual([]);
  });

  it("write an object in another project with its project, absent by its id's parts", async () => {
    const run: LxcSection = {
      profiles: [{ name: "oprl-p", project: "oprl1" }],
      volumes: [{ pool: "default", name: "oprl-v", project: "oprl1" }],
    };
    const actions = (await planOf(run, before)) as LxcAction[];
    const section = (await lxcImage(lxcScope(actions), before, ctx)).section as LxcSection;
    expect(section.profiles).toEqual([{ name: "oprl-p", project: "oprl1", ensure: "absent" }]);
    expect(section.volumes).toEqual([
      { pool: "default", name: "oprl-v", project: "oprl1", ensure: "absent" },
    ]);
  });

  it("refuse a volume's delete and growth, a key added to a network or adopted project", async () => {
    const run: LxcSection = {
      volumes: [{ pool: "default", name: "oprl-data", size: "32MiB" }],
      networks: [{ name: "oprlnet", config: { "user.added": "yes" } }],
      projects: [{ name: "default", adopt: true, config: { "user.added": "yes" } }],
    };
    const actions = (await planOf(run, before)) as LxcAction[];
    expect(kinds(actions)).toEqual([
      "modify network oprlnet",
      "modify project default",
      "modify volume default/oprl-data",
    ]);
    expect((await lxcImage(lxcScope(actions), before, ctx)).refused.sort()).toEqual([
      "network oprlnet: the run adds config user.added, and op cannot take it out again (it writes only the keys a file gives to a network)",
      "project default: the run adds config user.added, and op cannot take it out again (it writes only the keys a file gives to a project it did not create)",
      "volume default/oprl-data: the run grows its size from 16MiB to 32MiB, and a volume's size only grows",
    ]);

    const gone = (await planOf(
      { volumes: [{ pool: "default", name: "oprl-data", ensure: "absent" }] },
      before,
    )) as LxcAction[];
    expect((await lxcImage(lxcScope(gone), before, ctx)).refused).toEqual([
      "volume default/oprl-data: the run deletes it, and its content would not come back",
    ]);
  });

  it("delete an alias the run imports, and refuse one it re-imports or deletes", async () => {
    const action = (kind: "create" | "modify" | "delete") =>
      ({
        kind,
        plugin: "lxc",
        resource: "image",
        id: "image oprl/img",
        before: { alias: "oprl/img", fingerprint: "f00dfeed0123456789" },
        after: {},
        changes: [],
        reason: "test",
      }) as unknown as LxcAction;
    const created = await lxcImage(lxcScope([action("create")]), before, ctx);
    expect(created).toEqual({
      section: { images: [{ alias: "oprl/img", ensure: "absent" }] },
      refused: [],
    });
    const there = { ...before, aliases: { "oprl/img": "f00dfeed0123456789" } };
    expect(
      (await lxcImage(lxcScope([action("modify"), action("delete")]), there, ctx)).refused,
    ).toEqual([
      "image oprl/img: the run re-imports it, and op keeps no copy of the image it named before (f00dfeed0123)",
      "image oprl/img: the run deletes it, and op keeps no copy of an image (it imports only from a file's tarballs)",
    ]);
  });
});
