/**
 * Shared set-up of the lxc system tests: the real Incus daemon, pool, bridge and busybox image
 * made by scripts/setup-incus.sh (host-global fixtures), test-only containers (`optest-…`,
 * numeric ids ≥ 900000) and bridges (`optlb-…` Linux, `optob-…` Open vSwitch with
 * datapath_type=netdev), all removed by the tests that made them. One reconcile run goes
 * through the real engine (test/support/engine.ts) with a ledger that keeps its records in memory.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { lxcPlugin } from "../../plugins/lxc/index.js";
import { OpError } from "../../src/errors.js";
import { loadSettings } from "../../src/host/settings.js";
import { createIncusClient, type IncusClient } from "../../src/incus.js";
import type { Action, Ctx, Plugin } from "../../src/plugin.js";
import { planSection, quietCtx, type Reconciled, reconcile as reconcileSection } from "./engine.js";

export const testImage = "op-test/busybox";
/** Incus's own test bridge (setup-incus.sh): DHCP on 198.19.250.0/24, no NAT. */
export const incusBridge = "opincbr0";

export const incus: IncusClient = createIncusClient(loadSettings(process.env).incus.socket);

export function uid(): string {
  return randomBytes(3).toString("hex");
}

/** A numeric id in the test range, unique enough for parallel test files. */
export function testId(): number {
  return randomInt(900000, 1000000);
}

/**
 * A container entry with a test name and id, remembered in `created` for clean-up
 * (removeContainers); one in another project goes with its project (removeProject).
 */
export function testEntry(
  created: string[],
  fields: Record<string, unknown> = {},
): { id: number; name: string } & Record<string, unknown> {
  const name = `optest-${uid()}`;
  if (fields.project === undefined) created.push(name);
  return { id: testId(), name, image: testImage, stop_timeout: 10, ...fields };
}

export function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export function testCtx(socket?: string, project?: string): Ctx {
  return quietCtx({
    incus:
      socket === undefined && project === undefined
        ? incus
        : createIncusClient(socket ?? incus.socketPath, project === undefined ? {} : { project }),
  });
}

/** The lxc plugin's `reconcile` (test/support/engine.ts). */
export function reconcile(section: object, ctx: Ctx = testCtx()): Promise<Reconciled> {
  return reconcileSection(lxcPlugin as Plugin, section, ctx, { concurrency: 8 });
}

/** The plan only (query → prepare → diff). */
export async function plan(section: object, ctx: Ctx = testCtx()): Promise<Action[]> {
  return (await planSection(lxcPlugin as Plugin, section, ctx)).actions;
}

export interface Instance {
  name: string;
  status: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
}

/** Incus's answer for something that does not exist; any other error is the test's failure. */
export function isNotFound(error: unknown): boolean {
  return error instanceof OpError && /Incus refused: .*not found/i.test(error.message);
}

/** DELETE `path` (an API path), when there is still something there; other errors propagate. */
export async function deleteIfPresent(path: string): Promise<void> {
  await incus.request("DELETE", path).catch((error: unknown) => {
    if (!isNotFound(error)) throw error;
  });
}

/** The instance, or undefined when Incus says there is none; other errors propagate. */
export async function instance(
  name: string,
  client: IncusClient = incus,
): Promise<Instance | undefined> {
  return client.request<Instance>("GET", `/1.0/instances/${name}`).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
}

export async function startedAt(name: string): Promise<string> {
  return (await incus.request<{ started_at: string }>("GET", `/1.0/instances/${name}/state`))
    .started_at;
}

/**
 * An Incus project of the test's own (sharing the default project's images and profiles), for
 * what acts host-wide such as prune: it then only sees the test's containers. With
 * `ownImages`, it has an image store of its own, for image prune.
 */
export async function createProject(ownImages = false): Promise<string> {
  const name = `optest-${uid()}`;
  await incus.request("POST", "/1.0/projects", {
    name,
    config: {
      "features.images": String(ownImages),
      "features.profiles": "false",
      "features.storage.volumes": "false",
    },
  });
  return name;
}

/** Stops and deletes every instance of project `name` (delete protection lifted first). */
export async function removeProjectInstances(name: string): Promise<void> {
  const scoped = createIncusClient(incus.socketPath, { project: name });
  try {
    const names = await scoped.request<string[]>("GET", "/1.0/instances");
    await Promise.all(
      names.map(async (url) => {
        const instance = (url.split("?")[0] ?? url).split("/").pop() as string;
        await scoped.request("PATCH", `/1.0/instances/${instance}`, {
          config: { "security.protection.delete": "false" },
        });
        await scoped
          .request("PUT", `/1.0/instances/${instance}/state`, { action: "stop", force: true })
          .catch(() => {});
        await scoped.request("DELETE", `/1.0/instances/${instance}`);
      }),
    );
  } finally {
    scoped.close();
  }
}

/**
 * A project of a test's own that uses the default project's images and profiles (and, with
 * `ownVolumes: false`, its volumes too), so that the test image launches in it as it is.
 */
export function createSharedProject(name: string, options: { ownVolumes?: boolean } = {}): void {
  const features = ["features.images=false", "features.profiles=false"];
  if (options.ownVolumes === false) features.push("features.storage.volumes=false");
  sh("incus", ["project", "create", name, ...features.flatMap((feature) => ["-c", feature])]);
}

export async function removeProject(name: string): Promise<void> {
  await removeProjectInstances(name);
  const scoped = createIncusClient(incus.socketPath, { project: name });
  // Its own images only: a project without an image store lists the default project's.
  const { config } = await incus.request<{ config: Record<string, string> }>(
    "GET",
    `/1.0/projects/${name}`,
  );
  if (config["features.images"] === "true") {
    const images = await scoped.request<string[]>("GET", "/1.0/images");
    for (const url of images) await scoped.request("DELETE", url.replace(/\?.*$/, ""));
  }
  await incus.request("DELETE", `/1.0/projects/${name}`);
  scoped.close();
}

/**
 * Force-removes containers the test created (protection lifted first); missing ones are fine.
 * Callers list only names they made: a container that was there before a test is never passed.
 */
export async function removeContainers(names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      if ((await instance(name)) === undefined) return;
      await incus.request("PATCH", `/1.0/instances/${name}`, {
        config: { "security.protection.delete": "false" },
      });
      if ((await instance(name))?.status !== "Stopped")
        await incus.request("PUT", `/1.0/instances/${name}/state`, { action: "stop", force: true });
      await incus.request("DELETE", `/1.0/instances/${name}`);
    }),
  );
}

export function linkInfo(
  name: string,
): { name: string; ifindex: number; master?: string } | undefined {
  try {
    return (
      JSON.parse(sh("ip", ["-j", "link", "show", "dev", name])) as {
        ifname: string;
        ifindex: number;
        master?: string;
      }[]
    ).map((link) => ({
      name: link.ifname,
      ifindex: link.ifindex,
      ...(link.master === undefined ? {} : { master: link.master }),
    }))[0];
  } catch {
    return undefined;
  }
}

export function ovsPorts(bridge: string): string[] {
  return sh("ovs-vsctl", ["list-ports", bridge]).split("\n").filter(Boolean);
}

export function createLinuxBridge(): string {
  const name = `optlb-${uid()}`;
  sh("ip", ["link", "add", name, "type", "bridge"]);
  sh("ip", ["link", "set", name, "up"]);
  return name;
}

export function createOvsBridge(name = `optob-${uid()}`): string {
  sh("ovs-vsctl", [
    "--may-exist",
    "add-br",
    name,
    "--",
    "set",
    "bridge",
    name,
    "datapath_type=netdev",
  ]);
  return name;
}

export function removeBridge(name: string): void {
  if (linkInfo(name) === undefined && !ovsBridgeExists(name)) return;
  if (ovsBridgeExists(name)) sh("ovs-vsctl", ["--if-exists", "del-br", name]);
  else sh("ip", ["link", "del", name]);
}

export function ovsBridgeExists(name: string): boolean {
  try {
    sh("ovs-vsctl", ["br-exists", name]);
    return true;
  } catch {
    return false;
  }
}

/** Runs a shell command inside a container (test-side only; op itself never execs into one). */
export function inContainer(name: string, script: string): string {
  return sh("incus", ["exec", name, "--", "sh", "-c", script]);
}

/** A container's IPv4 address on eth0, once DHCP has given one (up to ~15 s). */
export async function dhcpAddress(name: string): Promise<string> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const state = await incus.request<{
      network: Record<string, { addresses: { family: string; address: string }[] }> | null;
    }>("GET", `/1.0/instances/${name}/state`);
    const found = state.network?.eth0?.addresses.find((a) => a.family === "inet");
    if (found !== undefined) return found.address;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${name} got no IPv4 address by DHCP`);
}
