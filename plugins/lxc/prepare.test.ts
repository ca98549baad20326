/**
 * prepare folds the op-dbus property bag into op's fields and rejects what cannot work, each
 * problem with its JSON path. Mount sources are real paths checked on this host.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { liveContainer } from "./lxc.testing.js";
import { fallbackImage, memoryBytes, prepareLxc } from "./prepare.js";
import type { LxcLive, LxcSection } from "./types.js";

const warnings: string[] = [];
const ctx = {
  log: { debug() {}, info() {}, warn: (m: string) => warnings.push(m) },
  cacheDir: undefined,
} as unknown as Ctx;
const live: LxcLive = {
  containers: [],
  bridges: { ovsbr0: "ovs", br1: "linux" },
  aliases: { "op-test/busybox": "aa" },
};
const env = { defaultImage: "op-test/busybox" };
const dir = mkdtempSync(join(tmpdir(), "op-lxc-prepare-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function problemsOf(section: LxcSection, options = env): Promise<string[]> {
  try {
    await prepareLxc(section, live, ctx, options);
  } catch (error) {
    expect(error).toBeInstanceOf(OpError);
    return [(error as OpError).message, ...(error as OpError).details];
  }
  throw new Error("prepare accepted the section");
}

describe("prepareLxc", () => {
  it("accepts the op-dbus example as it is: ct100, vi100 on ovsbr0, default image", async () => {
    const desired = await prepareLxc(
      {
        containers: [
          {
            id: "100",
            veth: "vi100",
            bridge: "ovsbr0",
            running: true,
            properties: { network_type: "bridge" },
          },
        ],
      },
      live,
      ctx,
      env,
    );
    const [ct] = desired.containers;
    expect(ct?.name).toBe("ct100");
    expect(ct?.config).toMatchObject({
      "user.op.id": "100",
      "user.op.managed": "true",
      "user.op.image": "op-test/busybox",
    });
    expect(ct?.devices.eth0).toEqual({
      type: "nic",
      nictype: "bridged",
      parent: "ovsbr0",
      host_name: "vi100",
      name: "eth0",
    });
  });

  it("takes the image from default_image, then OP_DEFAULT_IMAGE, then images:debian/12", async () => {
    const withDefault = await prepareLxc(
      { default_image: "op-test/busybox", containers: [{ id: 1 }] },
      live,
      ctx,
      {},
    );
    expect(withDefault.containers[0]?.image).toBe("op-test/busybox");
    const fromEnv = await prepareLxc({ containers: [{ id: 1 }] }, live, ctx, env);
    expect(fromEnv.containers[0]?.image).toBe("op-test/busybox");
    const remotes = async () => ({
      images: { server: "https://images.invalid", protocol: "simplestreams" },
    });
    const fallback = await prepareLxc({ containers: [{ id: 1 }] }, live, ctx, { remotes });
    expect(fallback.containers[0]?.image).toBe(fallbackImage);
    expect(fallback.containers[0]?.remote).toEqual({
      server: "https://images.invalid",
      protocol: "simplestreams",
      alias: "debian/12",
    });
  });

  it("maps netmaker to the mesh bridge unless bridge says otherwise, veth to vi{id}", async () => {
    const desired = await prepareLxc(
      {
        containers: [
          { id: 7, properties: { network_type: "netmaker" } },
          { id: 8, bridge: "br1", network_type: "netmaker" },
        ],
      },
      live,
      ctx,
      env,
    );
    expect(desired.containers.map((c) => c.nics)).toEqual([
      [{ device: "eth0", bridge: "mesh", veth: "vi7" }],
      [{ device: "eth0", bridge: "br1", veth: "vi8", kind: "linux" }],
    ]);
  });

  it("rejects a value given both as a field and in properties when they disagree, naming both paths", async () => {
    const lines = await problemsOf({
      containers: [
        {
          id: 1,
          limits: { memory: "1GiB" },
          properties: { memory: 512, template: "a" },
          image: "b",
        },
      ],
    });
    expect(lines.join("\n")).toContain("/plugins/lxc/containers/0/limits/memory");
    expect(lines.join("\n")).toContain("/plugins/lxc/containers/0/properties/memory");
    expect(lines.join("\n")).toContain("/plugins/lxc/containers/0/image");
    expect(lines.join("\n")).toContain("/plugins/lxc/containers/0/properties/template");
  });

  it("accepts the same value written two ways (1GiB and 1024 MiB)", async () => {
    const desired = await prepareLxc(
      { containers: [{ id: 1, limits: { memory: "1GiB" }, properties: { memory: "1024" } }] },
      live,
      ctx,
      env,
    );
    expect(desired.containers[0]?.config["limits.memory"]).toBe("1GiB");
    expect(memoryBytes("1GiB")).toBe(memoryBytes("1024MiB"));
  });

  it("rejects two containers with the same id, name or veth", async () => {
    const lines = (
      await problemsOf({
        containers: [
          { id: 1, bridge: "br1", veth: "same0" },
          { id: "1" },
          { id: 2, name: "web" },
          { id: 3, name: "web" },
          { id: 4, bridge: "br1", veth: "same0" },
        ],
      })
    ).join("\n");
    expect(lines).toMatch(
      /containers\/1\/id: id "1" is also used by \/plugins\/lxc\/containers\/0\/id/,
    );
    expect(lines).toMatch(
      /containers\/3\/name: name "web" is also used by \/plugins\/lxc\/containers\/2\/name/,
    );
    expect(lines).toMatch(
      /containers\/4\/veth: veth "same0" is also used by \/plugins\/lxc\/containers\/0\/veth/,
    );
  });

  it("rejects a veth over 15 characters, also when it comes from a long id", async () => {
    const lines = (
      await problemsOf({
        containers: [
          { id: 1, bridge: "br1", veth: "a-very-long-veth0" },
          { id: "webserver-number-one", bridge: "br1" },
        ],
      })
    ).join("\n");
    expect(lines).toContain(
      '/plugins/lxc/containers/0/veth: veth "a-very-long-veth0" is not a valid interface name',
    );
    expect(lines).toContain(
      '/plugins/lxc/containers/1/id: veth "viwebserver-number-one" is not a valid interface name',
    );
  });

  it("rejects an invalid container name", async () => {
    const lines = (await problemsOf({ containers: [{ id: 1, name: "bad_name" }] })).join("\n");
    expect(lines).toContain(
      '/plugins/lxc/containers/0/name: "bad_name" is not a valid container name',
    );
  });

  it("names a missing image alias and shows how to declare it under images", async () => {
    const lines = (await problemsOf({ containers: [{ id: 1, image: "nope/1" }] })).join("\n");
    expect(lines).toContain(
      '/plugins/lxc/containers/0/image: image alias "nope/1" is not in the local image store',
    );
    expect(lines).toContain('declare it under plugins.lxc.images, e.g. {"alias": "nope/1"');
  });

  it("rejects a mount source that does not exist, and accepts one that does", async () => {
    const missing = join(dir, "missing");
    const lines = (
      await problemsOf({ containers: [{ id: 1, mounts: [{ source: missing, path: "/data" }] }] })
    ).join("\n");
    expect(lines).toContain(
      `/plugins/lxc/containers/0/mounts/0/source: mount source ${missing} does not exist`,
    );
    const desired = await prepareLxc(
      { containers: [{ id: 1, mounts: [{ source: dir, path: "/data", readonly: true }] }] },
      live,
      ctx,
      env,
    );
    expect(desired.containers[0]?.devices["mnt-data"]).toEqual({
      type: "disk",
      source: dir,
      path: "/data",
      readonly: "true",
    });
  });

  it("computes an image's fingerprint as SHA-256 of metadata then rootfs", async () => {
    writeFileSync(join(dir, "m.tar.gz"), "meta");
    writeFileSync(join(dir, "r.tar.gz"), "rootfs");
    const desired = await prepareLxc(
      {
        images: [{ alias: "x/1", metadata: join(dir, "m.tar.gz"), rootfs: join(dir, "r.tar.gz") }],
        containers: [{ id: 1, image: "x/1" }],
      },
      live,
      ctx,
      env,
    );
    // printf metarootfs | sha256sum
    expect(desired.images[0]?.fingerprint).toBe(
      "8e6defa2a4d9b2361a1c486ffd987c431c9db9584cd8a31fd9340e2935a67bec",
    );
  });

  it("leaves the warning about op-dbus properties it does not use to check (validate, plan and apply)", async () => {
    warnings.length = 0;
    await prepareLxc(
      { containers: [{ id: 1, properties: { rootfs_size: "8G" } }] },
      live,
      ctx,
      env,
    );
    expect(warnings).toEqual([]);
  });

  it("refuses the lxc backend for now", async () => {
    const lines = await problemsOf({ backend: "lxc" });
    expect(lines[0]).toContain("/plugins/lxc/backend: the lxc backend");
  });
});

describe("prepareLxc: directories removed with a container (preserve: false)", () => {
  const root = mkdtempSync(join(tmpdir(), "op-lxc-removal-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const data = join(root, "data");
  const shared = join(root, "shared");
  mkdirSync(join(data, "sub"), { recursive: true });
  mkdirSync(join(shared, "inner"), { recursive: true });
  mkdirSync(join(root, "other"));
  writeFileSync(join(data, "sub", "f"), "x".repeat(5000));
  symlinkSync(data, join(root, "link"));

  const running = (name: string, devices: Record<string, Record<string, string>>) =>
    liveContainer(name, { config: {}, devices });
  const hostLive: LxcLive = {
    ...live,
    containers: [
      running("ct7", {
        root: { type: "disk", path: "/", pool: "default" },
        "mnt-d": { type: "disk", source: data, path: "/d" },
        "mnt-s": { type: "disk", source: shared, path: "/s" },
      }),
      running("ct8", { "mnt-i": { type: "disk", source: join(shared, "inner"), path: "/i" } }),
    ],
  };
  const withDir = { ...ctx, options: { allowUplink: false, stateDir: root } } as Ctx;
  const absent = (source: string, id = 7) => ({
    containers: [
      { id, ensure: "absent" as const, mounts: [{ source, path: "/d", preserve: false }] },
    ],
  });
  const removalsOf = async (section: LxcSection, at: Ctx = ctx) =>
    (await prepareLxc(section, hostLive, at, env)).absent[0]?.removeSources;
  const refusal = async (section: LxcSection): Promise<string> => {
    const error = await prepareLxc(section, hostLive, withDir, env).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    return (error as OpError).details.join("\n");
  };

  it("removes a directory the live container mounts, with its size, resolving .. and symlinks", async () => {
    const removal = [{ path: realpathSync(data), bytes: 5000 }];
    expect(await removalsOf(absent(data))).toEqual(removal);
    expect(await removalsOf(absent(join(data, "sub", "..")))).toEqual(removal);
    expect(await removalsOf(absent(join(root, "link")))).toEqual(removal);
  });

  it("takes a relative source from the state file's directory", async () => {
    expect(await removalsOf(absent("data"), withDir)).toEqual([
      { path: realpathSync(data), bytes: 5000 },
    ]);
  });

  it("refuses a directory the container does not mount (.. leading out of it included)", async () => {
    expect(await refusal(absent(join(root, "other")))).toBe(
      `/plugins/lxc/containers/0/mounts/0/source: ct7 does not mount ${join(root, "other")} (its live configuration mounts ${realpathSync(data)}, ${realpathSync(shared)}); op removes only a directory the container mounts: fix the source or set "preserve": true`,
    );
    expect(await refusal(absent(join(data, "..")))).toMatch(
      /^\/plugins\/lxc\/containers\/0\/mounts\/0\/source: ct7 does not mount /,
    );
  });

  it("refuses a directory that holds another instance's mount", async () => {
    expect(await refusal(absent(shared))).toBe(
      `/plugins/lxc/containers/0/mounts/0/preserve: op will not remove ${realpathSync(shared)} holds a mount of ct8 (${realpathSync(join(shared, "inner"))}); keep preserve true`,
    );
  });

  it("refuses a directory a virtual machine mounts", async () => {
    const withVm = { ...hostLive, otherMounts: [{ instance: "vm1", source: data }] };
    const error = await prepareLxc(absent(data), withVm, ctx, env).catch((e: unknown) => e);
    expect((error as OpError).details).toEqual([
      `/plugins/lxc/containers/0/mounts/0/preserve: op will not remove ${realpathSync(data)} is a mount of vm1 (${realpathSync(data)}); keep preserve true`,
    ]);
  });

  it("removes nothing for a container that is already gone, or a directory already gone", async () => {
    expect(await removalsOf(absent(data, 9))).toEqual([]);
    expect(await removalsOf(absent(join(root, "gone")))).toEqual([]);
  });

  it("keeps a preserved mount's directory", async () => {
    const section = {
      containers: [{ id: 7, ensure: "absent" as const, mounts: [{ source: data, path: "/d" }] }],
    };
    expect(await removalsOf(section)).toEqual([]);
  });
});

describe("prepareLxc: paths of the file", () => {
  const root = mkdtempSync(join(tmpdir(), "op-lxc-paths-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const withDir = { ...ctx, options: { allowUplink: false, stateDir: root } } as Ctx;

  it("resolves mount sources and image tarballs against the state file's directory", async () => {
    mkdirSync(join(root, "web"));
    writeFileSync(join(root, "m.tar.gz"), "meta");
    writeFileSync(join(root, "r.tar.gz"), "rootfs");
    const desired = await prepareLxc(
      {
        images: [{ alias: "x/2", metadata: "m.tar.gz", rootfs: "./r.tar.gz" }],
        containers: [{ id: 1, image: "x/2", mounts: [{ source: "web", path: "/web" }] }],
      },
      live,
      withDir,
      env,
    );
    expect(desired.images[0]).toMatchObject({
      metadata: join(root, "m.tar.gz"),
      rootfs: join(root, "r.tar.gz"),
    });
    expect(desired.containers[0]?.devices["mnt-web"]?.source).toBe(join(root, "web"));
  });

  it("refuses an image path that is a FIFO, a device or a directory, without blocking", async () => {
    const fifo = join(root, "fifo");
    execFileSync("mkfifo", [fifo]);
    const lines = (
      await problemsOf({
        images: [
          { alias: "a/1", metadata: fifo, rootfs: "/dev/zero" },
          { alias: "a/2", metadata: root, rootfs: join(root, "missing.tar.gz") },
        ],
      })
    ).join("\n");
    expect(lines).toContain(
      `/plugins/lxc/images/0/metadata: ${fifo}: the image metadata tarball is a FIFO`,
    );
    expect(lines).toContain(
      "/plugins/lxc/images/0/rootfs: /dev/zero: the image rootfs tarball is a",
    );
    expect(lines).toContain(
      `/plugins/lxc/images/1/metadata: ${root}: the image metadata tarball is a directory`,
    );
    expect(lines).toContain(
      `/plugins/lxc/images/1/rootfs: ${join(root, "missing.tar.gz")}: cannot open the image rootfs tarball: no such file`,
    );
  });

  it("refuses a symlink that leads a read-write mount into a directory the host needs", async () => {
    symlinkSync("/etc", join(root, "etc-link"));
    const lines = (
      await problemsOf({
        containers: [{ id: 1, mounts: [{ source: join(root, "etc-link"), path: "/x" }] }],
      })
    ).join("\n");
    expect(lines).toContain(
      `/plugins/lxc/containers/0/mounts/0/source: mounting ${join(root, "etc-link")} (/etc) read-write gives the container a directory the host needs (it is /etc)`,
    );
  });
});
