/**
 * One action at a time, through the Incus API (ctx.incus) and, for the few live fixes Incus
 * has no call for (rename a host veth, re-enrol it in its bridge), through ctx.exec.
 */
import { lstat, realpath, rm } from "node:fs/promises";
import { OpError } from "../../src/errors.js";
import { fileError } from "../../src/files.js";
import type { IncusClient } from "../../src/incus.js";
import { type Applied, type Ctx, type FieldChange, unreachable } from "../../src/plugin.js";
import { restoreBackup } from "./backup.js";
import { locationPath, moveTo, placed, withTarget } from "./containers/placement.js";
import { restartPath } from "./containers/restart.js";
import { type DesiredSnapshots, snapshotNames, snapshotWork } from "./containers/snapshots.js";
import { isRootDisk, nicStatePath } from "./diff.js";
import { applyFiles } from "./files/apply.js";
import { containerLinkUp, enrol, type HostNet, hostName, readHostNet, renameLink } from "./host.js";
import { deleteImage } from "./images/apply.js";
import { imageUpload } from "./images/tarball.js";
import { imageManagedProperty, opAliasDescription } from "./images/types.js";
import { applyNetwork } from "./networks/apply.js";
import { driftDevice, liveLink } from "./nics/drift.js";
import { applyProfile } from "./profiles/apply.js";
import { applyProject } from "./projects/apply.js";
import { waitFor } from "./provision/apply.js";
import { applyOwners } from "./provision/mounts.js";
import { incusOf } from "./query.js";
import { containerId, inProject } from "./refs.js";
import { isRemote } from "./remote.js";
import type {
  BridgeKind,
  ContainerDelete,
  DesiredContainer,
  DesiredImage,
  DesiredNic,
  LiveContainer,
  LxcAction,
} from "./types.js";
import { nicDevice, tags } from "./types.js";
import { applyVolume } from "./volumes/apply.js";

// biome-ignore lint/suspicious/noConfusingVoidType: only a container's create records something
export async function applyLxc(action: LxcAction, ctx: Ctx): Promise<void | Applied> {
  const incus = incusOf(ctx);
  if (action.resource === "project") return applyProject(action, incus);
  if (action.resource === "profile") return applyProfile(action, incus);
  if (action.resource === "image") {
    if (action.kind === "delete") return deleteImage(action.before, incus);
    return importImage(
      action.after,
      incus,
      action.kind === "modify" ? action.before.fingerprint : undefined,
    );
  }
  if (action.resource === "network") return applyNetwork(action, incus);
  if (action.resource === "volume") return applyVolume(action, incus);
  switch (action.kind) {
    case "create":
      return createContainer(action.after, ctx, incus);
    case "modify":
      return modifyContainer(action.before, action.after, action.changes, ctx, incus);
    case "delete":
      return deleteContainer(action.before, incus);
    default:
      return unreachable(action);
  }
}

/** A container as the API names it: its project and name. */
type Where = { project: string; name: string };

/** An instance's API path, scoped to its project. */
const instancePath = (where: Where, below = "") =>
  inProject(`/1.0/instances/${encodeURIComponent(where.name)}${below}`, where.project);

/** The container as messages name it (`web`, or `tenant/web` outside the default project). */
const label = (where: Where) => containerId(where.project, where.name);

async function importImage(
  image: DesiredImage,
  incus: IncusClient,
  previous: string | undefined,
): Promise<void> {
  const exists = await incus
    .request("GET", `/1.0/images/${image.fingerprint}`)
    .then(() => true)
    .catch(() => false);
  if (!exists) {
    // Marked as op's in the same request: only a marked image is ever deleted by op.
    const files = "tarball" in image ? await imageUpload(image) : image;
    const fingerprint = await incus.importImage(files, {
      what: `importing image ${image.alias}`,
      properties: { [imageManagedProperty]: "true" },
    });
    if (fingerprint !== image.fingerprint) {
      throw new OpError(
        "command-failed",
        `image ${image.alias}: Incus gave fingerprint ${fingerprint}, op computed ${image.fingerprint}`,
        {
          hint:
            "tarball" in image
              ? "op builds the same image from the same tarball each time; is the tarball being rewritten?"
              : "op expects a split image: a metadata tarball and a rootfs tarball, as `incus image import META ROOTFS` takes them",
        },
      );
    }
    if ("tarball" in image && image.adapt.profiles !== undefined)
      await setImageProfiles(incus, image.alias, fingerprint, image.adapt.profiles);
  }
  const alias = `/1.0/images/aliases/${encodeURIComponent(image.alias)}`;
  const what = { what: `pointing alias ${image.alias} at ${image.fingerprint.slice(0, 12)}` };
  if (previous === undefined) {
    await incus.request(
      "POST",
      "/1.0/images/aliases",
      { name: image.alias, target: image.fingerprint, description: opAliasDescription },
      what,
    );
    return;
  }
  await incus.request(
    "PUT",
    alias,
    { target: image.fingerprint, description: opAliasDescription },
    what,
  );
  // The replaced image is left without a name; remove it unless another alias still uses it.
  const old = await incus
    .request<{ aliases: unknown[] | null }>("GET", `/1.0/images/${previous}`)
    .catch(() => undefined);
  if (old !== undefined && (old.aliases ?? []).length === 0) {
    await incus.request("DELETE", `/1.0/images/${previous}`, undefined, {
      what: `removing the replaced image ${previous.slice(0, 12)}`,
    });
  }
}

/**
 * Incus reads no profiles from metadata.yaml, and a PATCH of an image leaves them as they are:
 * they are set by a PUT of the image's whole editable part.
 */
async function setImageProfiles(
  incus: IncusClient,
  alias: string,
  fingerprint: string,
  profiles: string[],
): Promise<void> {
  const path = `/1.0/images/${fingerprint}`;
  const what = { what: `setting the profiles of image ${alias}` };
  const current = await incus.request<Record<string, unknown>>("GET", path, undefined, what);
  const editable = ["auto_update", "properties", "public", "expires_at"] as const;
  const put = Object.fromEntries(editable.map((key) => [key, current[key]]));
  await incus.request("PUT", path, { ...put, profiles }, what);
}

/** Host bridges, read once per run (the network plugin's wave has finished before lxc's starts). */
const netByRun = new WeakMap<Ctx, Promise<HostNet>>();

async function hostNet(ctx: Ctx, fresh: boolean): Promise<HostNet> {
  let net = netByRun.get(ctx);
  if (fresh || net === undefined) {
    net = readHostNet(ctx.host);
    netByRun.set(ctx, net);
  }
  return net;
}

async function bridgeKind(
  net: HostNet,
  { bridge }: DesiredNic,
  container: DesiredContainer,
): Promise<BridgeKind> {
  const kind = net.bridges[bridge];
  if (kind === undefined) {
    throw new OpError(
      "not-found",
      `bridge ${bridge} does not exist (no Linux bridge and no Open vSwitch bridge of that name)`,
      {
        hint: `create it first (e.g. under plugins.network), or fix "bridge" at ${container.path}`,
      },
    );
  }
  return kind;
}

async function createContainer(
  container: DesiredContainer,
  ctx: Ctx,
  incus: IncusClient,
): Promise<Applied | undefined> {
  // A remote's bridges are on its host: Incus refuses the create if one is missing there.
  if (!isRemote(ctx))
    for (const nic of container.nics ?? [])
      await bridgeKind(await hostNet(ctx, false), nic, container);
  const source = container.remote
    ? {
        type: "image",
        mode: "pull",
        server: container.remote.server,
        protocol: container.remote.protocol,
        alias: container.remote.alias,
      }
    : { type: "image", alias: container.image };
  await applyOwners(container);
  if (container.backup !== undefined) {
    // Its disk holds its files and resolv.conf already; Incus imports it stopped.
    await restoreBackup(incus, container, container.backup, ctx);
    if (container.running) await setState(incus, container, { action: "start" });
    await waitFor(container, ctx);
    return;
  }
  // Started by Incus in the same operation unless a file must be written first (so that the
  // first boot sees it: Incus writes files into a created, stopped container).
  const startNow =
    container.running && container.resolvConf === undefined && container.files === undefined;
  // The tag that says resolv.conf is written is set only once it is: a run that dies between
  // the create and the write leaves a container the next plan still finds to be finished.
  const { [tags.dns]: dnsTag, ...config } = container.config;
  await incus.request(
    "POST",
    withTarget(inProject("/1.0/instances", container.project), container.target),
    {
      name: container.name,
      type: "container",
      source,
      config,
      devices: container.devices,
      profiles: container.profiles,
      start: startNow,
      ...(container.description === undefined ? {} : { description: container.description }),
      ...(container.ephemeral === undefined ? {} : { ephemeral: container.ephemeral }),
    },
    { what: `creating container ${label(container)}` },
  );
  if (container.resolvConf !== undefined && dnsTag !== undefined) {
    await incus.pushFile(container.name, "/etc/resolv.conf", container.resolvConf, {
      project: container.project,
    });
    await incus.request(
      "PATCH",
      instancePath(container),
      { config: { [tags.dns]: dnsTag } },
      { what: `marking resolv.conf written in ${label(container)}` },
    );
  }
  if (container.files !== undefined) await applyFiles(incus, container);
  if (container.running && !startNow) await setState(incus, container, { action: "start" });
  if (container.snapshots !== undefined) await keepSnapshots(incus, container, container.snapshots);
  await waitFor(container, ctx);
  return placed(incus, container);
}

/**
 * Takes the declared snapshots the container lacks and, with prune, deletes the others the
 * schedule did not make; the names it has are read here, at the time of the change.
 */
async function keepSnapshots(
  incus: IncusClient,
  container: DesiredContainer,
  snapshots: DesiredSnapshots,
): Promise<void> {
  const urls = await incus.request<string[]>(
    "GET",
    instancePath(container, "/snapshots"),
    undefined,
    {
      what: `listing the snapshots of ${label(container)}`,
    },
  );
  const work = snapshotWork(snapshots, snapshotNames(urls), container.config["snapshots.pattern"]);
  for (const snapshot of work.create) {
    await incus.request(
      "POST",
      instancePath(container, "/snapshots"),
      { name: snapshot.name, stateful: snapshot.stateful },
      { what: `taking snapshot ${snapshot.name} of ${label(container)}` },
    );
  }
  for (const name of work.remove) {
    await incus.request(
      "DELETE",
      instancePath(container, `/snapshots/${encodeURIComponent(name)}`),
      undefined,
      { what: `deleting snapshot ${name} of ${label(container)} (prune)` },
    );
  }
}

async function modifyContainer(
  live: LiveContainer,
  container: DesiredContainer,
  changes: readonly FieldChange[],
  ctx: Ctx,
  incus: IncusClient,
): Promise<void> {
  const changed = (test: (path: string) => boolean) => changes.some((change) => test(change.path));
  const running = changes.find((change) => change.path === "running");
  const move = changes.find((change) => change.path === locationPath);
  if (move !== undefined) {
    // Started again on its new member only if it stays running (a stop is part of the plan).
    await moveTo(
      incus,
      container,
      String(move.after),
      live.status === "running",
      () => stop(incus, container, container.stopTimeout),
      async () => {
        if (running?.after !== false) await setState(incus, container, { action: "start" });
      },
    );
  }
  if (running?.after === false && !(move !== undefined && live.status === "running"))
    await stop(incus, container, container.stopTimeout);

  // Written before the PUT that sets its tag (user.op.dns), so the tag never claims a file
  // that is not there.
  if (container.resolvConf !== undefined && changed((path) => path === `config.${tags.dns}`)) {
    await incus.pushFile(container.name, "/etc/resolv.conf", container.resolvConf, {
      project: container.project,
    });
  }
  if (
    changed(
      (path) =>
        path === "profiles" ||
        path === "description" ||
        path === "ephemeral" ||
        path.startsWith("config.") ||
        path.startsWith("devices."),
    )
  ) {
    const replug = changed((path) => path === `devices.${nicDevice}`);
    for (const nic of container.nics ?? []) {
      if (changed((path) => path === `devices.${nic.device}`) && !isRemote(ctx))
        await bridgeKind(await hostNet(ctx, false), nic, container);
    }
    // Incus re-plugs a changed NIC as a new, down interface: what it had is put back after.
    const nicBefore =
      replug && live.status === "running" ? await readNic(ctx, container) : undefined;
    // A PUT replaces the whole writable config, so the keys the file dropped go away too;
    // Incus's own volatile/image keys are handed back unchanged. Limits apply live.
    await incus.request(
      "PUT",
      instancePath(container),
      {
        architecture: live.put.architecture,
        ephemeral: container.ephemeral ?? live.put.ephemeral,
        stateful: live.put.stateful,
        description: container.description ?? live.put.description,
        profiles: container.profiles,
        config: { ...live.put.volatile, ...container.config },
        devices: { ...rootDisks(live), ...container.devices },
      },
      { what: `updating container ${label(container)}` },
    );
    if (nicBefore !== undefined) await restoreNic(ctx, container, nicBefore);
  }
  // Planned only when allowed (diff.ts): the keys Incus reads at start are now stored.
  if (changed((path) => path === restartPath))
    await restart(incus, container, container.stopTimeout);
  if (changed((path) => path === nicStatePath))
    await inContainerNet(ctx, container, ["link", "set", "dev", nicDevice, "up"]);
  // Before a start, so that the boot sees them.
  if (changed((path) => path.startsWith("files."))) await applyFiles(incus, container, changes);
  if (running?.after === true) await setState(incus, container, { action: "start" });
  if (
    container.snapshots !== undefined &&
    changed((path) => path.startsWith("snapshots.") || path === `config.${tags.snapshots}`)
  )
    await keepSnapshots(incus, container, container.snapshots);
  for (const nic of container.nics ?? []) {
    if (changed((path) => driftDevice(path) === nic.device))
      await fixLink(live, nic, container, ctx);
  }
  await applyOwners(container, changes);
  if (running?.after === true) await waitFor(container, ctx);
}

/**
 * The kernel fixes reach a container through this host (its pid here, its veth here): never
 * on a remote's, where a local container of the same name would be hit instead. guardRemote
 * refuses such plans; this stops any path it missed.
 */
function onThisHost(ctx: Ctx, what: string): void {
  if (!isRemote(ctx)) return;
  throw new OpError(
    "command-failed",
    `op cannot ${what}: it is on the remote Incus ${incusOf(ctx).socketPath}, not on this host`,
    {
      hint: "make the change on that host, or restart the container (Incus sets its NICs up at start)",
    },
  );
}

/** What a container's own eth0 had: up or down, addresses and routes it did not get by DHCP. */
interface NicState {
  up: boolean;
  addresses: string[];
  routes: string[][];
}

/** Runs `ip ARGS` in a running container's network namespace (op's own ip, not the container's). */
async function inContainerNet(ctx: Ctx, where: Where, args: readonly string[]): Promise<string> {
  onThisHost(ctx, `enter the network namespace of ${label(where)}`);
  const pid = ctx.host.sys.containerPid(hostName(where, incusOf(ctx).project));
  if (pid === undefined) {
    throw new OpError(
      "not-found",
      `${label(where)} is not running: op cannot reach its ${nicDevice}`,
      {
        hint: `start it (incus start ${where.name} --project ${where.project}) and run op apply again`,
      },
    );
  }
  return (await ctx.exec.run("nsenter", ["--target", String(pid), "--net", "ip", ...args])).stdout;
}

interface IpAddress {
  local: string;
  prefixlen: number;
  scope?: string;
  dynamic?: boolean;
}
interface IpRoute {
  dst: string;
  gateway?: string;
  protocol?: string;
  scope?: string;
}

async function readNic(ctx: Ctx, name: Where): Promise<NicState | undefined> {
  onThisHost(ctx, `read the ${nicDevice} of ${label(name)}`);
  const up = containerLinkUp(ctx.host.sys, hostName(name, incusOf(ctx).project), nicDevice);
  if (up === undefined) return undefined;
  const [links, routes] = await Promise.all([
    inContainerNet(ctx, name, ["-j", "addr", "show", "dev", nicDevice]),
    inContainerNet(ctx, name, ["-j", "route", "show", "dev", nicDevice]),
  ]);
  const addresses = (JSON.parse(links) as { addr_info?: IpAddress[] }[])
    .flatMap((link) => link.addr_info ?? [])
    .filter((address) => address.scope !== "link" && address.dynamic !== true)
    .map((address) => `${address.local}/${address.prefixlen}`);
  return {
    up,
    addresses,
    // Kernel routes come back with their addresses; the others are re-added as they were.
    routes: (JSON.parse(routes) as IpRoute[])
      .filter((route) => route.protocol !== "kernel" && route.protocol !== "dhcp")
      .map((route) => [route.dst, ...(route.gateway === undefined ? [] : ["via", route.gateway])]),
  };
}

async function restoreNic(ctx: Ctx, name: Where, state: NicState): Promise<void> {
  if (!state.up) return;
  await inContainerNet(ctx, name, ["link", "set", "dev", nicDevice, "up"]);
  for (const address of state.addresses)
    await inContainerNet(ctx, name, ["addr", "replace", address, "dev", nicDevice]);
  for (const route of state.routes)
    await inContainerNet(ctx, name, ["route", "replace", ...route, "dev", nicDevice]);
}

/** Root disks the container has of its own: kept by a PUT, since the file does not list them. */
function rootDisks(live: LiveContainer): LiveContainer["devices"] {
  return Object.fromEntries(
    Object.entries(live.devices).filter(([, device]) => isRootDisk(device)),
  );
}

/**
 * The NIC config is right but the kernel's view drifted: rename the host veth back (down,
 * rename, up) and re-enrol it, without restarting the container or touching its side.
 */
async function fixLink(
  live: LiveContainer,
  nic: DesiredNic,
  container: DesiredContainer,
  ctx: Ctx,
): Promise<void> {
  onThisHost(ctx, `fix the host end of ${label(container)}'s ${nic.device}`);
  const veth = liveLink(live, nic.device)?.veth;
  if (veth === undefined) {
    throw new OpError(
      "not-found",
      `${container.name} runs but op cannot find the host end of its ${nic.device} link`,
      {
        hint: `restart the container (incus restart ${container.name}) so Incus creates ${nic.veth} again`,
      },
    );
  }
  const net = await hostNet(ctx, true);
  const kind = await bridgeKind(net, nic, container);
  const ovsBridge = net.ovs.portBridge.get(veth);
  const linuxMaster = ctx.host.sys.link(veth)?.master;
  if (veth !== nic.veth) {
    if (ctx.host.sys.link(nic.veth) !== undefined) {
      throw new OpError(
        "invalid-state",
        `cannot rename ${veth} to ${nic.veth}: another link already has that name`,
        {
          hint: `rename or remove the other ${nic.veth}, or change "veth" at ${container.path}`,
        },
      );
    }
    await renameLink(ctx.exec, veth, nic.veth);
  }
  // A Linux bridge keeps a renamed port; OVS knows ports by name, so a rename means re-adding.
  const enrolled =
    kind === "linux" ? linuxMaster === nic.bridge : ovsBridge === nic.bridge && veth === nic.veth;
  if (!enrolled) {
    await enrol(
      { exec: ctx.exec, ovs: ctx.host.ovs },
      nic.veth,
      { name: nic.bridge, kind },
      { link: veth, ...(ovsBridge === undefined ? {} : { ovsBridge }) },
      nic.vlan,
    );
  }
}

async function deleteContainer(target: ContainerDelete, incus: IncusClient): Promise<void> {
  const { container } = target;
  if (container.config["security.protection.delete"] === "true") {
    if (!target.unprotect) {
      throw new OpError(
        "invalid-state",
        `container ${container.name} has delete protection (security.protection.delete=true); op will not delete it`,
        {
          hint: 'to delete it, give it "ensure": "absent" together with "properties": {"protection": false} (or config security.protection.delete: false)',
        },
      );
    }
    await incus.request(
      "PATCH",
      instancePath(container),
      { config: { "security.protection.delete": "false" } },
      {
        what: `lifting delete protection of ${label(container)}`,
      },
    );
  }
  if (container.status === "running" || container.status === "frozen")
    await stop(incus, container, target.stopTimeout);
  await incus.request("DELETE", instancePath(container), undefined, {
    what: `deleting container ${label(container)}`,
  });
  for (const removal of target.removeSources) await removeDirectory(removal.path);
}

/**
 * Removes a directory prepare checked (a realpath the container mounted), unless it changed
 * since: a symlink put in its place, or something that is no longer a directory, is left alone.
 */
export async function removeDirectory(path: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw fileError(error, path, "cannot look at the directory to remove");
  }
  if (real !== path || !(await lstat(path)).isDirectory()) {
    throw new OpError(
      "invalid-state",
      `${path} changed since the plan (it is no longer the directory the container mounted); op did not remove it`,
      { hint: "look at it, remove it by hand if it should go, and run op apply again" },
    );
  }
  await rm(path, { recursive: true, force: true });
}

/** Asks the container to shut down; forces it after `timeout` seconds. */
async function stop(incus: IncusClient, where: Where, timeout: number): Promise<void> {
  await gracefully(incus, where, "stop", timeout);
}

/**
 * Restarts a running container, shutting it down within `timeout` seconds as a stop does.
 * Incus's own restart keeps an ephemeral container (a stop then a start would delete it).
 */
async function restart(incus: IncusClient, where: Where, timeout: number): Promise<void> {
  await gracefully(incus, where, "restart", timeout);
}

async function gracefully(
  incus: IncusClient,
  where: Where,
  action: "stop" | "restart",
  timeout: number,
): Promise<void> {
  if (timeout > 0) {
    try {
      await setState(incus, where, { action, timeout, force: false }, timeout + 30);
      return;
    } catch (error) {
      if (!(error instanceof OpError) || error.code !== "command-failed") throw error;
    }
  }
  await setState(incus, where, { action, force: true });
}

const verbs: Record<string, string> = {
  start: "starting",
  stop: "stopping",
  restart: "restarting",
};

async function setState(
  incus: IncusClient,
  where: Where,
  state: Record<string, unknown>,
  waitSeconds?: number,
): Promise<void> {
  const verb = verbs[String(state.action)] ?? "changing the state of";
  try {
    await incus.request("PUT", instancePath(where, "/state"), state, {
      what: `${verb} container ${label(where)}`,
      ...(waitSeconds === undefined ? {} : { waitSeconds }),
    });
  } catch (error) {
    // Already in the wanted state (changed meanwhile): nothing to do.
    const settled =
      state.action === "start" ? /already running/i : /already stopped|is not running/i;
    if (error instanceof OpError && settled.test(error.message)) return;
    throw error;
  }
}
