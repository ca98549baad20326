/**
 * prepare folds the op-dbus property bag into op's fields and rejects what cannot work, each
 * problem with its JSON path. Mount sources are real paths checked on this host.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
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
    expect(desired.containers.map((c) => c.nic)).toEqual([
      { bridge: "mesh", veth: "vi7" },
      { bridge: "br1", veth: "vi8", kind: "linux" },
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

  it("warns about op-dbus properties it does not use", async () => {
    warnings.length = 0;
    await prepareLxc(
      { containers: [{ id: 1, properties: { rootfs_size: "8G" } }] },
      live,
      ctx,
      env,
    );
    expect(warnings).toEqual([
      "/plugins/lxc/containers/0/properties/rootfs_size: not used by op (ignored)",
    ]);
  });

  it("refuses the lxc backend for now", async () => {
    const lines = await problemsOf({ backend: "lxc" });
    expect(lines[0]).toContain("/plugins/lxc/backend: the lxc backend");
  });
});
