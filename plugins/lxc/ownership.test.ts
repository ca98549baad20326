/**
 * What makes a container op's (the `user.op.managed` tag, read by query) and the last guard
 * of a directory removal (apply re-checks the planned realpath), on real directories.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { createSys } from "../../src/host/sys.js";
import { removeDirectory } from "./apply.js";
import { liveContainer } from "./query.js";

const instance = (config: Record<string, string>) => ({
  name: "c1",
  type: "container",
  status: "Stopped",
  architecture: "x86_64",
  ephemeral: false,
  stateful: false,
  description: "",
  profiles: ["default"],
  config,
  devices: {},
});

// A stopped container: nothing of the host's files is read (a root with nothing in it).
const noFiles = createSys(join(tmpdir(), `op-lxc-no-files-${process.pid}`));

describe("liveContainer ownership", () => {
  it("is op's only with user.op.managed=true", () => {
    expect(liveContainer(instance({ "user.op.managed": "true" }), noFiles).managed).toBe(true);
    expect(liveContainer(instance({ "user.op.managed": "false" }), noFiles).managed).toBe(false);
    expect(liveContainer(instance({ "user.op.managed": "yes" }), noFiles).managed).toBe(false);
    expect(liveContainer(instance({}), noFiles).managed).toBe(false);
  });

  it("keeps Incus's own keys apart from the config op compares", () => {
    const live = liveContainer(
      instance({ "volatile.eth0.hwaddr": "x", "image.os": "busybox", "limits.cpu": "1" }),
      noFiles,
    );
    expect(live.config).toEqual({ "limits.cpu": "1" });
    expect(live.put.volatile).toEqual({ "volatile.eth0.hwaddr": "x", "image.os": "busybox" });
  });
});

describe("removeDirectory", () => {
  const root = mkdtempSync(join(tmpdir(), "op-lxc-remove-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("removes the planned directory and what it holds", async () => {
    const dir = join(root, "scratch");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "sub", "f"), "x");
    await removeDirectory(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it("is done when the directory is already gone", async () => {
    await expect(removeDirectory(join(root, "never"))).resolves.toBeUndefined();
  });

  it("leaves alone a symlink put in its place since the plan, and what it points to", async () => {
    const target = join(root, "precious");
    mkdirSync(target);
    writeFileSync(join(target, "keep"), "x");
    const planned = join(root, "swapped");
    symlinkSync(target, planned);
    const error = await removeDirectory(planned).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toBe(
      `${planned} changed since the plan (it is no longer the directory the container mounted); op did not remove it`,
    );
    expect(existsSync(join(target, "keep"))).toBe(true);
  });

  it("leaves alone a file put in its place", async () => {
    const planned = join(root, "now-a-file");
    writeFileSync(planned, "x");
    await expect(removeDirectory(planned)).rejects.toThrow(/changed since the plan/);
    expect(existsSync(planned)).toBe(true);
  });
});
