/**
 * System tests of the lxc plugin on the real Incus daemon (scripts/setup-incus.sh): create,
 * re-apply, drift fixed, live changes, delete with and without preserved data, protection,
 * prune, and refusals. Every container and bridge here is the test's own and is removed after.
 */

import { createHash } from "node:crypto";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import { createRunner } from "../src/exec.js";
import { createIncusClient, type IncusClient } from "../src/incus.js";
import { quietCtx, recordingRunner } from "./support/engine.js";
import {
  createLinuxBridge,
  createOvsBridge,
  createProject,
  inContainer,
  incus,
  instance,
  isNotFound,
  linkInfo,
  numberedEntry,
  ovsPorts,
  plan,
  reconcile,
  removeBridge,
  removeContainers,
  removeProject,
  sh,
  startedAt,
  testCtx,
  testImage,
  uid,
} from "./support/lxc.js";

const containers: string[] = [];
const bridges: string[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await removeContainers(containers);
  for (const bridge of bridges) removeBridge(bridge);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A container entry with a test name and id, remembered for clean-up. */
function entry(fields: Record<string, unknown> = {}) {
  return numberedEntry(containers, fields);
}

/** A host directory an unprivileged container's root may write (idmap base 1000000). */
function hostDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "optest-mnt-"));
  chownSync(dir, 1000000, 1000000);
  dirs.push(dir);
  return dir;
}

function peerIndexOf(name: string): string {
  return inContainer(name, "cat /sys/class/net/eth0/ifindex").trim();
}

describe("lxc on a Linux bridge", () => {
  const bridge = createLinuxBridge();
  bridges.push(bridge);
  const ct = entry({
    bridge,
    limits: { cpu: 1, memory: 256 },
    config: { "environment.OP_TEST": "1" },
  });
  const veth = `vi${ct.id}`;

  it("creates the container: image, limits, config, tags, NIC named by veth in the bridge, started", async () => {
    const run = await reconcile({ containers: [ct] });
    expect(run.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`create ${ct.name}`]);
    expect(run.errors).toEqual(new Map());
    expect(run.remaining).toEqual([]);
    const live = await instance(ct.name);
    expect(live?.status).toBe("Running");
    expect(live?.config).toMatchObject({
      "limits.cpu": "1",
      "limits.memory": "256MiB",
      "environment.OP_TEST": "1",
      "user.op.managed": "true",
      "user.op.id": String(ct.id),
      "user.op.image": testImage,
    });
    expect(live?.devices.eth0).toEqual({
      type: "nic",
      nictype: "bridged",
      parent: bridge,
      host_name: veth,
      name: "eth0",
    });
    expect(linkInfo(veth)?.master).toBe(bridge);
    expect(run.records.map((r) => `${r.status} ${r.action} ${r.target}`)).toEqual([
      `intent create ${ct.name}`,
      `ok create ${ct.name}`,
    ]);
  });

  it("re-applying the same file plans nothing", async () => {
    expect(await plan({ containers: [ct] })).toEqual([]);
  });

  it("modifies limits live, without a restart", async () => {
    const before = await startedAt(ct.name);
    const changed = { ...ct, limits: { cpu: 2, memory: "512MiB" } };
    const run = await reconcile({ containers: [changed] });
    expect(run.actions).toHaveLength(1);
    expect(run.actions[0]).toMatchObject({ kind: "modify", id: ct.name });
    expect(run.remaining).toEqual([]);
    const live = await instance(ct.name);
    expect(live?.config).toMatchObject({ "limits.cpu": "2", "limits.memory": "512MiB" });
    expect(await startedAt(ct.name)).toBe(before);
    Object.assign(ct, changed);
  });

  it("starts a container stopped by hand", async () => {
    sh("incus", ["stop", "--force", ct.name]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]).toMatchObject({
      kind: "modify",
      changes: [{ path: "running", before: false, after: true }],
    });
    expect((await instance(ct.name))?.status).toBe("Running");
    expect(run.remaining).toEqual([]);
  });

  it("renames back a veth renamed by hand, live: the container keeps its interface", async () => {
    const inside = peerIndexOf(ct.name);
    const other = `optmp${uid()}`;
    sh("ip", ["link", "set", veth, "down"]);
    sh("ip", ["link", "set", veth, "name", other]);
    sh("ip", ["link", "set", other, "nomaster"]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]?.reason).toBe(`rename veth ${other} → ${veth}, enrol in ${bridge}`);
    expect(run.remaining).toEqual([]);
    expect(linkInfo(other)).toBeUndefined();
    expect(linkInfo(veth)?.master).toBe(bridge);
    expect(peerIndexOf(ct.name)).toBe(inside);
  });

  it("re-enrols a port removed from its bridge by hand", async () => {
    sh("ip", ["link", "set", veth, "nomaster"]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]?.reason).toBe(`enrol in ${bridge}`);
    expect(linkInfo(veth)?.master).toBe(bridge);
  });

  it("moves back, live, a port enrolled by hand in another bridge", async () => {
    const other = createLinuxBridge();
    bridges.push(other);
    sh("ip", ["link", "set", veth, "master", other]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]?.reason).toBe(`enrol in ${bridge} (now in ${other})`);
    expect(linkInfo(veth)?.master).toBe(bridge);
    expect(run.remaining).toEqual([]);
  });

  it("stops it gracefully when running becomes false", async () => {
    const run = await reconcile({ containers: [{ ...ct, running: false }] });
    expect(run.actions[0]?.reason).toBe("stop");
    expect((await instance(ct.name))?.status).toBe("Stopped");
    expect(run.remaining).toEqual([]);
  });
});

describe("lxc on an Open vSwitch bridge", () => {
  const bridge = createOvsBridge();
  bridges.push(bridge);
  const ct = entry({ bridge });
  const veth = `vi${ct.id}`;

  it("creates the container with its veth as a port of the OVS bridge", async () => {
    const run = await reconcile({ containers: [ct] });
    expect(run.errors).toEqual(new Map());
    expect(run.remaining).toEqual([]);
    expect(ovsPorts(bridge)).toContain(veth);
  });

  it("reads the container's OVS port over OVSDB's socket, starting no process", async () => {
    const exec = recordingRunner(createRunner());
    const actions = await plan({ containers: [ct] }, quietCtx({ exec, incus }));
    expect(actions).toEqual([]);
    expect(exec.calls).toEqual([]);
  });

  it("re-enrols a port removed by hand", async () => {
    sh("ovs-vsctl", ["del-port", bridge, veth]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]?.reason).toBe(`enrol in ${bridge}`);
    expect(ovsPorts(bridge)).toContain(veth);
    expect(run.remaining).toEqual([]);
  });

  it("renames back a veth renamed by hand and makes it the bridge's port again", async () => {
    const inside = peerIndexOf(ct.name);
    const other = `optmp${uid()}`;
    sh("ip", ["link", "set", veth, "down"]);
    sh("ip", ["link", "set", veth, "name", other]);
    sh("ip", ["link", "set", other, "up"]);
    const run = await reconcile({ containers: [ct] });
    expect(run.actions[0]).toMatchObject({
      kind: "modify",
      changes: expect.arrayContaining([{ path: "veth", before: other, after: veth }]),
    });
    expect(run.remaining).toEqual([]);
    expect(ovsPorts(bridge)).toContain(veth);
    expect(ovsPorts(bridge)).not.toContain(other);
    expect(peerIndexOf(ct.name)).toBe(inside);
  });

  it("moves the container to a Linux bridge without a restart", async () => {
    const linux = createLinuxBridge();
    bridges.push(linux);
    const before = await startedAt(ct.name);
    const run = await reconcile({ containers: [{ ...ct, bridge: linux }] });
    expect(run.actions[0]?.reason).toBe(`re-plug eth0: ${bridge}/${veth} → ${linux}/${veth}`);
    expect(run.remaining).toEqual([]);
    expect(linkInfo(veth)?.master).toBe(linux);
    expect(ovsPorts(bridge)).not.toContain(veth);
    expect(await startedAt(ct.name)).toBe(before);
  });
});

describe("lxc delete", () => {
  it("keeps a preserved mount's data written inside the container, and removes an unpreserved one", async () => {
    const kept = hostDir();
    const dropped = hostDir();
    const ct = entry({
      mounts: [
        { source: kept, path: "/kept", preserve: true },
        { source: dropped, path: "/dropped", preserve: false },
      ],
    });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());
    inContainer(ct.name, "echo written-inside > /kept/data; echo scratch > /dropped/data");
    expect(readFileSync(join(kept, "data"), "utf8")).toBe("written-inside\n");

    const run = await reconcile({ containers: [{ ...ct, ensure: "absent" }] });
    expect(run.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`delete ${ct.name}`]);
    expect(run.actions[0]?.reason).toBe(
      `ensure: absent; then removes host directory ${dropped} (8 B)`,
    );
    expect(run.errors).toEqual(new Map());
    expect(await instance(ct.name)).toBeUndefined();
    expect(readFileSync(join(kept, "data"), "utf8")).toBe("written-inside\n");
    expect(existsSync(dropped)).toBe(false);
  });

  it("removes no directory the container does not mount, even through ..", async () => {
    const top = hostDir();
    const mounted = join(top, "sub", "zz");
    mkdirSync(mounted, { recursive: true });
    chownSync(mounted, 1000000, 1000000);
    writeFileSync(join(top, "sub", "keep"), "outside zz\n");
    const ct = entry({ mounts: [{ source: mounted, path: "/zz", preserve: true }] });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());

    const sneaky = {
      ...ct,
      ensure: "absent",
      mounts: [{ source: `${mounted}/..`, path: "/zz", preserve: false }],
    };
    const error = await plan({ containers: [sneaky] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).details).toEqual([
      `/plugins/lxc/containers/0/mounts/0/source: ${ct.name} does not mount ${join(top, "sub")} (its live configuration mounts ${mounted}); op removes only a directory the container mounts: fix the source or set "preserve": true`,
    ]);
    expect(await instance(ct.name)).toBeDefined();
    expect(readFileSync(join(top, "sub", "keep"), "utf8")).toBe("outside zz\n");
  });

  it("removes no directory that holds another container's mount", async () => {
    const shared = hostDir();
    const inner = join(shared, "inner");
    mkdirSync(inner);
    chownSync(inner, 1000000, 1000000);
    const first = entry({
      running: false,
      mounts: [{ source: shared, path: "/s", preserve: false }],
    });
    const second = entry({ running: false, mounts: [{ source: inner, path: "/i" }] });
    expect((await reconcile({ containers: [first, second] })).errors).toEqual(new Map());

    const error = await plan({ containers: [{ ...first, ensure: "absent" }, second] }).catch(
      (e: unknown) => e,
    );
    expect((error as OpError).details).toEqual([
      `/plugins/lxc/containers/0/mounts/0/preserve: op will not remove ${shared} holds a mount of ${second.name} (${inner}); keep preserve true`,
    ]);
    expect(existsSync(inner)).toBe(true);
    expect(await instance(first.name)).toBeDefined();
  });

  it("refuses to delete a protected container unless the file turns protection off", async () => {
    const ct = entry({ properties: { protection: 1 } });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());
    expect((await instance(ct.name))?.config["security.protection.delete"]).toBe("true");

    const refused = await reconcile({ containers: [{ ...ct, ensure: "absent" }] });
    expect(refused.failed).toBe(1);
    expect(refused.errors.get(ct.name)).toBe(
      `container ${ct.name} has delete protection (security.protection.delete=true); op will not delete it`,
    );
    expect(refused.records.at(-1)).toMatchObject({
      status: "failed",
      target: ct.name,
      error: refused.errors.get(ct.name),
    });
    expect(await instance(ct.name)).toBeDefined();

    const lifted = await reconcile({
      containers: [{ ...ct, ensure: "absent", properties: { protection: false } }],
    });
    expect(lifted.errors).toEqual(new Map());
    expect(await instance(ct.name)).toBeUndefined();
  });

  it("prunes op's containers gone from the file, never a container op did not create", async () => {
    // Prune acts on every op container it sees: in a project of its own it sees only these.
    const project = await createProject();
    try {
      const ctx = testCtx(undefined, project);
      const keep = entry();
      const gone = entry();
      const foreign = `optest-${uid()}`;
      sh("incus", ["create", testImage, foreign, "-q", "--project", project]);
      expect((await reconcile({ containers: [keep, gone] }, ctx)).errors).toEqual(new Map());

      // Without prune, a container dropped from the file stays (and is not drift).
      expect(await plan({ containers: [keep] }, ctx)).toEqual([]);
      const run = await reconcile({ prune: true, containers: [keep] }, ctx);
      expect(run.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`delete ${gone.name}`]);
      const left = await ctx.incus?.request<string[]>("GET", "/1.0/instances");
      expect(left?.map((url) => (url.split("?")[0] ?? url).split("/").pop()).sort()).toEqual(
        [foreign, keep.name].sort(),
      );
    } finally {
      await removeProject(project);
    }
  });

  it("replaces a container whose image changes, and the plan says so", async () => {
    const ct = entry({ running: false });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());
    const alias = `optest-alias-${uid()}`;
    sh("incus", ["image", "alias", "create", alias, (await imageFingerprint(testImage)) as string]);
    try {
      const run = await reconcile({ containers: [{ ...ct, image: alias }] });
      expect(run.actions.map((a) => `${a.kind} ${a.id} (${a.reason})`)).toEqual([
        `delete ${ct.name} (image ${testImage} → ${alias}: replaced (delete + create))`,
        `create ${ct.name} (image ${testImage} → ${alias}: replaced (delete + create))`,
      ]);
      expect(run.remaining).toEqual([]);
      expect((await instance(ct.name))?.config["user.op.image"]).toBe(alias);
    } finally {
      sh("incus", ["image", "alias", "delete", alias]);
    }
  });
});

/** Deletes an image by alias (the alias goes with it); a missing one is fine. */
async function incusDelete(aliasPath: string): Promise<void> {
  const { incus } = testCtx();
  const target = await incus
    ?.request<{ target: string }>("GET", aliasPath)
    .catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
  if (target !== undefined) await incus?.request("DELETE", `/1.0/images/${target.target}`);
}

async function imageFingerprint(alias: string): Promise<string | undefined> {
  const { incus } = testCtx();
  return (await incus?.request<{ target: string }>("GET", `/1.0/images/aliases/${alias}`))?.target;
}

describe("lxc failures", () => {
  it("shows Incus's refusal as the failed action's message, and goes on with the rest", async () => {
    const bad = entry({ config: { "no.such.key": "1" } });
    const good = entry();
    const run = await reconcile({ containers: [bad, good] });
    expect(run.failed).toBe(1);
    const message = run.errors.get(bad.name) ?? "";
    expect(message).toMatch(
      new RegExp(`^creating container ${bad.name}: Incus refused: .*no\\.such\\.key`),
    );
    expect(message).not.toContain("    at ");
    expect(run.records).toContainEqual(
      expect.objectContaining({ status: "failed", target: bad.name, error: message }),
    );
    expect((await instance(good.name))?.status).toBe("Running");
  });

  it("fails a create whose bridge does not exist, naming it, and creates the others", async () => {
    const missing = `optnb-${uid()}`;
    const lost = entry({ bridge: missing });
    const fine = entry();
    const run = await reconcile({ containers: [lost, fine] });
    expect(run.errors.get(lost.name)).toBe(
      `bridge ${missing} does not exist (no Linux bridge and no Open vSwitch bridge of that name)`,
    );
    expect(await instance(lost.name)).toBeUndefined();
    expect(await instance(fine.name)).toBeDefined();
  });

  it("says the daemon is not running when its socket is missing", async () => {
    const socket = join(tmpdir(), `optest-${uid()}.socket`);
    const error = await plan({ containers: [entry()] }, testCtx(socket)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("daemon-unavailable");
    expect((error as OpError).message).toBe(
      `the Incus daemon is not running: no socket at ${socket}`,
    );
  });

  it("says so when nothing listens on the socket path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "optest-sock-"));
    dirs.push(dir);
    const socket = join(dir, "unix.socket");
    sh("touch", [socket]);
    const error = await plan({ containers: [entry()] }, testCtx(socket)).catch((e: unknown) => e);
    expect((error as OpError).code).toBe("daemon-unavailable");
    expect((error as OpError).message).toBe(
      `the Incus daemon is not running: nothing listens on ${socket}`,
    );
  });
});

describe("lxc images and the op-dbus property bag", () => {
  it("imports tarballs under an alias, records the fingerprint, and re-imports when they change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "optest-img-"));
    dirs.push(dir);
    const build = () =>
      sh("bash", [
        join(import.meta.dirname, "..", "scripts", "setup-incus.sh"),
        "build-image",
        dir,
      ]);
    const fingerprint = () =>
      createHash("sha256")
        .update(readFileSync(join(dir, "metadata.tar.gz")))
        .update(readFileSync(join(dir, "rootfs.tar.gz")))
        .digest("hex");
    build();
    const alias = `optest/img-${uid()}`;
    const images = [
      { alias, metadata: join(dir, "metadata.tar.gz"), rootfs: join(dir, "rootfs.tar.gz") },
    ];
    const ct = entry({ image: alias, running: false });
    const first = fingerprint();
    try {
      const run = await reconcile({ images, containers: [ct] });
      expect(run.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([
        `create image ${alias}`,
        `create ${ct.name}`,
      ]);
      expect(run.errors).toEqual(new Map());
      expect(run.records[0]).toMatchObject({
        status: "intent",
        target: `image ${alias}`,
        changes: { after: { fingerprint: first } },
      });
      const { incus } = testCtx();
      expect(
        (await incus?.request<{ target: string }>("GET", `/1.0/images/aliases/${alias}`))?.target,
      ).toBe(first);
      expect(await plan({ images, containers: [ct] })).toEqual([]);

      // Same content, new tarballs (metadata.yaml carries a new date): re-imported, old image gone.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      build();
      const second = fingerprint();
      const again = await reconcile({ images, containers: [ct] });
      expect(again.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`modify image ${alias}`]);
      expect(again.errors).toEqual(new Map());
      expect(
        (await incus?.request<{ target: string }>("GET", `/1.0/images/aliases/${alias}`))?.target,
      ).toBe(second);
      expect(
        await incus?.request("GET", `/1.0/images/${first}`).catch((e: unknown) => String(e)),
      ).toMatch(/not found/i);
    } finally {
      await removeContainers([ct.name]);
      await incusDelete(`/1.0/images/aliases/${encodeURIComponent(alias)}`);
    }
  });

  it("applies properties: memory, cores, swap, onboot, unprivileged, hostname, nameserver, searchdomain", async () => {
    const bridge = createLinuxBridge();
    bridges.push(bridge);
    const ct = entry({
      bridge,
      properties: {
        network_type: "bridge",
        memory: "192",
        swap: 0,
        cores: 1,
        onboot: 1,
        unprivileged: true,
        hostname: "optest-host",
        nameserver: "198.18.0.53 198.18.0.54",
        searchdomain: "lab.test",
      },
    });
    const run = await reconcile({ containers: [ct] });
    expect(run.errors).toEqual(new Map());
    expect(run.remaining).toEqual([]);
    expect((await instance(ct.name))?.config).toMatchObject({
      "limits.memory": "192MiB",
      "limits.cpu": "1",
      "limits.memory.swap": "false",
      "boot.autostart": "true",
      "security.privileged": "false",
    });
    expect(inContainer(ct.name, "hostname").trim()).toBe("optest-host");
    expect(inContainer(ct.name, "grep -v '^#' /etc/resolv.conf")).toBe(
      "search lab.test\nnameserver 198.18.0.53\nnameserver 198.18.0.54\n",
    );

    // A new nameserver is written into the running container.
    const changed = {
      ...ct,
      properties: { ...(ct.properties as object), nameserver: "198.18.0.55" },
    };
    const again = await reconcile({ containers: [changed] });
    expect(again.actions[0]?.reason).toMatch(/^config\.user\.op\.dns /);
    expect(inContainer(ct.name, "grep ^nameserver /etc/resolv.conf")).toBe(
      "nameserver 198.18.0.55\n",
    );
  });
});

describe("lxc: what op writes into a container, and its NIC", () => {
  it("finishes a container whose run died before resolv.conf was written; --check shows it", async () => {
    const bridge = createLinuxBridge();
    bridges.push(bridge);
    const ct = entry({ bridge, properties: { nameserver: "198.18.0.53" } });
    // The connection to Incus lost right after the create: a client whose file write fails
    // once (a real drop cannot be timed between two requests), everything else is real.
    const real = testCtx();
    const broken: IncusClient = {
      ...incus,
      request: (...args) => incus.request(...args),
      importImage: (...args) => incus.importImage(...args),
      close: () => {},
      pushFile: () =>
        Promise.reject(new OpError("daemon-unavailable", "lost the connection to Incus (test)")),
    };
    const first = await reconcile({ containers: [ct] }, { ...real, incus: broken });
    expect(first.errors.get(ct.name)).toBe("lost the connection to Incus (test)");
    expect((await instance(ct.name))?.status).toBe("Stopped");

    const drift = await plan({ containers: [ct] });
    expect(drift.map((a) => a.reason)).toEqual(["add config.user.op.dns, start"]);
    const again = await reconcile({ containers: [ct] });
    expect(again.errors).toEqual(new Map());
    expect(again.remaining).toEqual([]);
    expect(inContainer(ct.name, "grep ^nameserver /etc/resolv.conf")).toBe(
      "nameserver 198.18.0.53\n",
    );
    expect(await plan({ containers: [ct] })).toEqual([]);
  });

  it("after re-plugging the NIC for a new veth name, eth0 inside is up again with its address", async () => {
    const bridge = createLinuxBridge();
    bridges.push(bridge);
    const ct = entry({ bridge });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());
    inContainer(ct.name, "ip addr add 198.18.77.2/24 dev eth0 && ip link set eth0 up");
    const renamed = { ...ct, veth: `vr${String(ct.id).slice(-6)}` };
    const run = await reconcile({ containers: [renamed] });
    expect(run.actions[0]?.reason).toBe(
      `re-plug eth0: ${bridge}/vi${ct.id} → ${bridge}/${renamed.veth}`,
    );
    expect(run.errors).toEqual(new Map());
    expect(run.remaining).toEqual([]);
    expect(inContainer(ct.name, "cat /sys/class/net/eth0/operstate").trim()).toBe("up");
    expect(inContainer(ct.name, "ip -4 addr show dev eth0")).toContain("198.18.77.2/24");
    expect(linkInfo(renamed.veth)?.master).toBe(bridge);
  });

  it("sees eth0 taken down inside as drift and brings it up", async () => {
    const bridge = createLinuxBridge();
    bridges.push(bridge);
    const ct = entry({ bridge });
    expect((await reconcile({ containers: [ct] })).errors).toEqual(new Map());
    inContainer(ct.name, "ip link set eth0 down");
    const drift = await plan({ containers: [ct] });
    expect(drift.map((a) => a.reason)).toEqual(["bring eth0 up inside (it is down)"]);
    const run = await reconcile({ containers: [ct] });
    expect(run.errors).toEqual(new Map());
    expect(run.remaining).toEqual([]);
    const flags = Number.parseInt(inContainer(ct.name, "cat /sys/class/net/eth0/flags"), 16);
    expect(flags & 1).toBe(1);
  });
});

describe("lxc test helpers", () => {
  it("instance() says an unreachable Incus is an error, not a missing container", async () => {
    const client = createIncusClient(join(tmpdir(), `optest-${uid()}.socket`));
    await expect(instance("anything", client)).rejects.toThrow(/the Incus daemon is not running/);
    expect(await instance(`optest-none-${uid()}`)).toBeUndefined();
  });
});
