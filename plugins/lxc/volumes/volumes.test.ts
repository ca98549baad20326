/**
 * Custom volumes from the file alone and against a live state given as data: `size` and
 * `config.size` that must agree, attachments at one path each, a missing pool, a shrink, a
 * content type change, deletes refused while a container that stays has the volume, and the
 * diff's actions and needs.
 */
import { describe, expect, it } from "vitest";
import { lxcQueryJson, reportLxc } from "../index.js";
import { collect, leavingOf, ownedFields } from "../objects.testing.js";
import { prepareContainer } from "../prepare.js";
import type { LxcSection } from "../types.js";
import { attachVolumes, checkVolumes } from "./check.js";
import { diffVolumes } from "./diff.js";
import { checkAttachedVolumes, resolveVolumes } from "./prepare.js";
import { liveVolume } from "./query.js";
import type { LiveVolume } from "./types.js";

function live(name: string, fields: Partial<LiveVolume> = {}): LiveVolume {
  return {
    pool: "default",
    name,
    contentType: "filesystem",
    ...ownedFields(),
    ...fields,
  };
}

const pools = [{ name: "default", driver: "dir" }];

describe("checkVolumes", () => {
  it("normalises an entry, and refuses a size given twice, a volume twice and op's tag", () => {
    const problems = collect();
    const section: LxcSection = {
      volumes: [
        { pool: "default", name: "data", size: "1GiB", config: { "user.purpose": "x" } },
        { pool: "default", name: "logs", size: "1GiB", config: { size: "2GiB" } },
        { pool: "default", name: "data" },
        { pool: "fast", name: "data", config: { "user.op.managed": "false" } },
      ],
    };
    const [data] = checkVolumes(section, "/plugins/lxc", problems);
    expect(data).toMatchObject({
      contentType: "filesystem",
      ensure: "present",
      config: { size: "1GiB", "user.purpose": "x", "user.op.managed": "true" },
    });
    expect(problems.lines).toEqual([
      '/plugins/lxc/volumes/1/size: size is given twice with different values: /plugins/lxc/volumes/1/size = "1GiB", /plugins/lxc/volumes/1/config/size = "2GiB"',
      '/plugins/lxc/volumes/2/name: volume "default/data" is also declared by /plugins/lxc/volumes/0',
      "/plugins/lxc/volumes/3/config/user.op.managed: user.op.managed is op's own ownership tag; op sets it on what it creates, the file cannot",
    ]);
  });
});

describe("a container's volumes", () => {
  it("are disk devices vol-NAME; a path or a volume used twice is refused", () => {
    const problems = collect();
    const devices = { "mnt-srv": { type: "disk", source: "/srv", path: "/srv" } };
    const attached = attachVolumes(
      {
        id: "web",
        volumes: [
          { volume: "data", path: "/data", readonly: true },
          { volume: "logs", pool: "fast", path: "/data" },
          { volume: "data", path: "/other" },
          { volume: "srv", path: "/srv" },
        ],
      },
      "/c/0",
      devices,
      problems,
    );
    expect(devices).toMatchObject({
      "vol-data": {
        type: "disk",
        pool: "default",
        source: "data",
        path: "/data",
        readonly: "true",
      },
    });
    expect(attached).toEqual([{ pool: "default", volume: "data", path: "/c/0/volumes/0" }]);
    expect(problems.lines).toEqual([
      "/c/0/volumes/1/path: /data is already used by device vol-data of this container; each volume needs a path of its own",
      "/c/0/volumes/2/volume: volume data is attached twice to this container (device vol-data)",
      "/c/0/volumes/3/path: /srv is already used by device mnt-srv of this container; each volume needs a path of its own",
    ]);
  });

  it("are checked against host-directory mounts at the same path through prepareContainer", () => {
    const problems = collect();
    prepareContainer(
      {
        id: "web",
        mounts: [{ source: "/srv/web", path: "/data" }],
        volumes: [{ volume: "data", path: "/data" }],
      },
      "/c/0",
      "op-test/busybox",
      problems,
    );
    expect(problems.lines).toEqual([
      "/c/0/volumes/0/path: /data is already used by device mnt-data of this container; each volume needs a path of its own",
    ]);
  });

  it("must exist or be declared present, in a pool that exists", () => {
    const problems = collect();
    const declared = checkVolumes(
      {
        volumes: [
          { pool: "default", name: "new" },
          { pool: "default", name: "old", ensure: "absent" },
        ],
      },
      "/v",
      problems,
    );
    checkAttachedVolumes(
      {
        name: "web",
        project: "default",
        attached: [
          { pool: "default", volume: "there", path: "/c/0/volumes/0" },
          { pool: "default", volume: "new", path: "/c/0/volumes/1" },
          { pool: "default", volume: "old", path: "/c/0/volumes/2" },
          { pool: "default", volume: "nowhere", path: "/c/0/volumes/3" },
          { pool: "fast", volume: "there", path: "/c/0/volumes/4" },
        ],
      },
      declared,
      { pools, volumes: [live("there")] },
      problems,
    );
    expect(problems.lines).toEqual([
      '/c/0/volumes/2/volume: volume old is marked "ensure": "absent" at /v/volumes/1, but web attaches it',
      "/c/0/volumes/3/volume: volume nowhere is neither a custom volume of pool default on this host (incus storage volume list default) nor declared under plugins.lxc.volumes",
      "/c/0/volumes/4/pool: storage pool fast does not exist on this host (its pools: default)",
    ]);
  });
});

describe("resolveVolumes", () => {
  const resolve = (section: LxcSection, volumes: LiveVolume[], leaving = leavingOf()) => {
    const problems = collect();
    resolveVolumes(
      checkVolumes(section, "/v", problems),
      { pools, volumes },
      { problems, leaving },
    );
    return problems.lines;
  };

  it("refuses a missing pool, a shrink and a new content type; a size may grow", () => {
    const current = live("data", { config: { size: "1GiB", "user.op.managed": "true" } });
    expect(
      resolve(
        {
          volumes: [
            { pool: "fast", name: "x" },
            { pool: "default", name: "data", size: "1000MiB", content_type: "block" },
          ],
        },
        [current],
      ),
    ).toEqual([
      "/v/volumes/0/pool: storage pool fast does not exist on this host (its pools: default)",
      "/v/volumes/1/content_type: volume data holds filesystem content on this host, not block; a volume's content type is fixed when it is created",
      "/v/volumes/1/size: volume data is 1GiB on this host; op grows a volume but does not shrink it (1000MiB is smaller): copy the data to a new, smaller volume instead",
    ]);
    expect(
      resolve({ volumes: [{ pool: "default", name: "data", size: "2GiB" }] }, [current]),
    ).toEqual([]);
  });

  it("changes or deletes a volume op did not create only by adoption, never tagging it", () => {
    const foreign = live("data", { managed: false, config: { size: "1GiB" } });
    const entry = { pool: "default", name: "data" };
    // Nothing at plan time: the adoption is the engine's to refuse (adoptionProblems).
    expect(resolve({ volumes: [entry] }, [foreign])).toEqual([]);
    expect(resolve({ volumes: [{ ...entry, ensure: "absent" }] }, [foreign])).toEqual([]);
    const actionsOf = (section: LxcSection) =>
      diffVolumes(checkVolumes(section, "/v", collect()), [foreign], new Set());
    const [grow] = actionsOf({ volumes: [{ ...entry, size: "2GiB" }] });
    expect(grow).toMatchObject({
      kind: "modify",
      adopt: { path: "/v/volumes/0", allowed: false },
      changes: [{ path: "config.size", before: "1GiB", after: "2GiB" }],
    });
    expect(grow?.resource === "volume" && grow.kind === "modify" && grow.after.config).toEqual({
      size: "2GiB",
    });
    expect(actionsOf({ volumes: [{ ...entry, adopt: true, size: "2GiB" }] })[0]?.adopt).toEqual({
      path: "/v/volumes/0",
      allowed: true,
    });
    expect(actionsOf({ volumes: [{ ...entry, size: "1GiB" }] })).toEqual([]);
    expect(actionsOf({ volumes: [{ ...entry, ensure: "absent" }] })[0]).toMatchObject({
      kind: "delete",
      adopt: { path: "/v/volumes/0", allowed: false },
    });
  });

  it("refuses deleting a volume attached to a container that stays, with both names", () => {
    const attached = live("data", { usedBy: ["/1.0/instances/web"] });
    const section: LxcSection = { volumes: [{ pool: "default", name: "data", ensure: "absent" }] };
    expect(resolve(section, [attached])).toEqual([
      `/v/volumes/0/ensure: volume data of pool default is attached to instance web, which stays; detach it first (remove it from the container's "volumes" and apply), then delete it`,
    ]);
    expect(resolve(section, [attached], leavingOf({ containers: ["web"] }))).toEqual([]);
  });
});

describe("diffVolumes", () => {
  const desired = (section: LxcSection) => checkVolumes(section, "/v", collect());

  it("creates, grows in place, and deletes only on ensure: absent, after its containers", () => {
    const wanted = desired({
      volumes: [
        { pool: "default", name: "new", size: "1GiB" },
        { pool: "default", name: "grow", size: "2GiB" },
        { pool: "default", name: "gone", ensure: "absent" },
      ],
    });
    const actions = diffVolumes(
      wanted,
      [
        live("grow", { config: { size: "1GiB", "user.op.managed": "true" } }),
        live("gone", { usedBy: ["/1.0/instances/web"] }),
        live("left-in-place"),
      ],
      new Set(["web"]),
    );
    expect(actions.map((a) => [a.kind, a.id, a.reason, a.needs])).toEqual([
      ["create", "default/new", "new filesystem volume in pool default, 1GiB", undefined],
      ["modify", "default/grow", "size 1GiB → 2GiB", undefined],
      [
        "delete",
        "default/gone",
        "ensure: absent (its data goes with it)",
        [{ plugin: "lxc", resource: "container", id: "web" }],
      ],
    ]);
  });
});

describe("volumes as the query gives them", () => {
  it("keeps volatile keys apart, and hides them from --json unless --all", () => {
    const volume = liveVolume("default", {
      name: "data",
      type: "custom",
      content_type: "filesystem",
      description: "",
      config: { size: "1GiB", "volatile.idmap.last": "[]", "user.op.managed": "true" },
      used_by: [],
    });
    expect(volume.config).toEqual({ size: "1GiB", "user.op.managed": "true" });
    const state = { containers: [], bridges: {}, aliases: {}, pools, volumes: [volume] };
    expect(JSON.stringify(lxcQueryJson(state, { all: false }))).not.toContain("volatile");
    expect(JSON.stringify(lxcQueryJson(state, { all: true }))).toContain("volatile.idmap.last");
    expect(reportLxc(state).find((report) => report.title === "volumes")?.rows).toEqual([
      ["default", "data", "default", "filesystem", "1GiB", "-", "yes"],
    ]);
  });
});
