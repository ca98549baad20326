/**
 * Pure: desired vs live → actions. One action per container (create, modify with every change,
 * or delete), one per image alias. A change of image is a delete + create of the container;
 * containers neither in the file nor tagged as op's are never looked at.
 */
import type { FieldChange, ResourceRef } from "../../src/plugin.js";
import { linkRef, ovsDatabaseRef } from "../network/refs.js";
import { describeMove, heldMove, locationPath, placementChanges } from "./containers/placement.js";
import { heldReason, restartChanges, restartPath } from "./containers/restart.js";
import { snapshotChanges } from "./containers/snapshots.js";
import { createdFilesWords, describeFile, fileChanges } from "./files/diff.js";
import { adoptionOf } from "./holding.js";
import { imageChanges, imageSource } from "./images/describe.js";
import { diffImageDeletes } from "./images/diff.js";
import { diffNetworks } from "./networks/diff.js";
import { describeDrift, driftDevice, linkDrift } from "./nics/drift.js";
import { sameRef } from "./objects.js";
import { humanBytes } from "./paths.js";
import { diffProfiles } from "./profiles/diff.js";
import { diffProjects } from "./projects/diff.js";
import { cloudInitReplacement, describeCloudInit } from "./provision/diff.js";
import { describeOwner, ownerChanges } from "./provision/mounts.js";
import {
  containerId,
  defaultProject,
  imageActionId,
  imageRef,
  networkRef,
  profileRef,
  projectRef,
  volumeRef,
} from "./refs.js";
import {
  type ContainerDelete,
  type DesiredContainer,
  type Devices,
  type DirectoryRemoval,
  type LiveContainer,
  type LxcAction,
  type LxcDesired,
  type LxcLive,
  nicDevice,
  plugin,
  tags,
} from "./types.js";
import { diffVolumes } from "./volumes/diff.js";

/** The changes that only put op's tags on a container. */
const tagPaths: ReadonlySet<string> = new Set(Object.values(tags).map((key) => `config.${key}`));

export function diffLxc(desired: LxcDesired, live: LxcLive): LxcAction[] {
  const actions: LxcAction[] = [];
  const imageActions = new Set<string>();
  for (const image of desired.images) {
    const current = live.aliases[image.alias];
    const id = imageActionId(image.alias);
    const resource = "image";
    if (current === undefined) {
      actions.push({
        kind: "create",
        plugin,
        resource,
        id,
        after: image,
        reason: `import image ${short(image.fingerprint)} ${imageSource(image)}`,
      });
    } else if (current !== image.fingerprint) {
      actions.push({
        kind: "modify",
        plugin,
        resource,
        id,
        before: { alias: image.alias, fingerprint: current },
        after: image,
        changes: imageChanges(image, current, live),
        reason: `${"tarball" in image ? "tarball or adaptation" : "tarballs"} changed: re-import ${imageSource(image)} (${short(current)} → ${short(image.fingerprint)})`,
      });
    } else continue;
    imageActions.add(image.alias);
  }

  // Keyed by project and name: `web` in two projects is two containers.
  const byId = new Map(
    live.containers.map((container) => [containerId(container.project, container.name), container]),
  );
  for (const container of desired.containers) {
    const id = containerId(container.project, container.name);
    const current = byId.get(id);
    const needs = needsOf(container, imageActions);
    // A bridge that is not on the host must come from the network plugin in this same run.
    const expects = (container.nics ?? [])
      .filter((nic) => nic.kind === undefined)
      .map((nic) => linkRef(nic.bridge));
    const create = (reason: string): LxcAction => ({
      kind: "create",
      plugin,
      resource: "container",
      id,
      after: container,
      reason,
      ...(needs.length > 0 ? { needs } : {}),
      ...(expects.length > 0 ? { expects } : {}),
    });
    if (current === undefined) {
      const mounts = container.mounts.map(
        (mount) =>
          `, mounts ${mount.source} at ${mount.path}${mount.readonly ? " (read-only)" : ""}`,
      );
      actions.push(
        create(
          `new container from ${container.backup === undefined ? container.image : `backup ${container.backup.slice(0, 12)}`}${container.running ? ", started" : ""}${mounts.join("")}${createdFilesWords(container)}`,
        ),
      );
      continue;
    }
    const imageChanged = current.image !== undefined && current.image !== container.image;
    // An undo brings back the container a run replaced from its backup: the one there goes.
    const restore =
      container.backup !== undefined && current.config[tags.backup] !== container.backup
        ? `restored from backup ${container.backup.slice(0, 12)}: replaced (delete + import)`
        : undefined;
    const recreate =
      imageChanged || restore !== undefined ? restore : cloudInitReplacement(container, current);
    if (imageChanged || recreate !== undefined) {
      const before: ContainerDelete = {
        container: current,
        unprotect: container.config["security.protection.delete"] === "false",
        stopTimeout: container.stopTimeout,
        removeSources: [],
        ...(container.rollbackSnapshot ? { snapshot: true as const } : {}),
      };
      const reason =
        recreate ?? `image ${current.image} → ${container.image}: replaced (delete + create)`;
      actions.push({
        kind: "delete",
        plugin,
        resource: "container",
        id,
        before,
        reason,
        ...adoptionOf(container, current),
      });
      actions.push(create(reason));
      continue;
    }
    const changes = containerChanges(container, current);
    // Not op's, not adopted, and differing only by op's tags: nothing of it would change, so
    // nothing is taken over (an `op export --all` file applies back as no changes).
    if (
      !current.managed &&
      container.adopt !== true &&
      changes.every((change) => tagPaths.has(change.path))
    )
      continue;
    // Keys Incus reads only at start: a running container that keeps running must restart.
    const atStart =
      current.status === "running" && container.running ? restartChanges(changes) : [];
    if (atStart.length > 0 && container.restartAllowed)
      changes.push({ path: restartPath, after: `graceful restart for ${atStart.join(", ")}` });
    // Limits or config alone do not wait for the bridge; a start or a device change does.
    const touchesNic = changes.some((c) =>
      c.path === "running"
        ? c.after === true
        : driftDevice(c.path) !== undefined || c.path.startsWith("devices."),
    );
    if (changes.length > 0) {
      actions.push({
        kind: "modify",
        plugin,
        resource: "container",
        id,
        before: current,
        after: container,
        changes,
        reason: `${current.managed ? "" : "made outside op: "}${changes.map(describe).join(", ")}`,
        // A move stops the container and starts it on its member: a restart too.
        ...(atStart.length > 0 || changes.some((change) => change.path === locationPath)
          ? { restart: true }
          : {}),
        ...heldOf(container, changes, atStart),
        ...(needs.length > 0 && touchesNic ? { needs } : {}),
        ...(expects.length > 0 && touchesNic ? { expects } : {}),
        ...adoptionOf(container, current),
      });
    }
  }

  for (const gone of desired.absent) {
    const current = byId.get(containerId(gone.project, gone.name));
    if (current === undefined) continue;
    const before: ContainerDelete = {
      container: current,
      unprotect: gone.unprotect,
      stopTimeout: gone.stopTimeout,
      removeSources: gone.removeSources,
      ...(gone.rollbackSnapshot ? { snapshot: true as const } : {}),
    };
    actions.push({
      kind: "delete",
      plugin,
      resource: "container",
      id: containerId(gone.project, gone.name),
      before,
      reason: deleteReason(
        current.managed ? "ensure: absent" : "ensure: absent (made outside op)",
        current,
        gone.unprotect,
        gone.removeSources,
      ),
      ...adoptionOf(gone, current),
    });
  }

  if (desired.prune) {
    const named = new Set(
      [...desired.containers, ...desired.absent].map((c) => containerId(c.project, c.name)),
    );
    // Every project: a container op made in a project the file no longer names is pruned too.
    for (const current of live.containers) {
      const id = containerId(current.project, current.name);
      if (!current.managed || named.has(id)) continue;
      const before: ContainerDelete = {
        container: current,
        unprotect: false,
        stopTimeout: 30,
        removeSources: [],
      };
      actions.push({
        kind: "delete",
        plugin,
        resource: "container",
        id,
        before,
        reason: deleteReason("not in the file (prune)", current, false),
      });
    }
  }
  // The containers this run deletes (their delete's ref, by container id).
  const deletedRefs = new Map<string, ResourceRef>();
  for (const action of actions) {
    if (action.resource !== "container" || action.kind !== "delete") continue;
    const { project, name } = action.before.container;
    deletedRefs.set(containerId(project, name), {
      plugin,
      resource: action.resource,
      id: action.id,
    });
  }
  const deleted = new Set(deletedRefs.keys());
  actions.push(
    ...diffNetworks(desired.networks ?? [], live.networks ?? [], desired.prune, deleted),
    ...diffVolumes(desired.volumes ?? [], live.volumes ?? [], deleted),
    ...diffImageDeletes(desired, live, deletedRefs),
  );
  // Last: a profile's or project's delete waits for the deletes of what uses it.
  const { prune, profiles, projects } = desired;
  const objects = profiles === undefined ? [] : diffProfiles(profiles, prune, live, actions);
  if (projects) objects.push(...diffProjects(projects, prune, live, [...actions, ...objects]));
  addObjectNeeds(actions, objects);
  return [...actions, ...objects];
}

function deleteReason(
  why: string,
  current: LiveContainer,
  unprotect: boolean,
  removals: readonly DirectoryRemoval[] = [],
): string {
  const removed = removals.map(
    (removal) => `; then removes host directory ${removal.path} (${humanBytes(removal.bytes)})`,
  );
  if (current.config["security.protection.delete"] !== "true") return why + removed.join("");
  return unprotect
    ? `${why}; lifts delete protection first${removed.join("")}`
    : `${why}; has delete protection, so it will be refused`;
}

/** The bridge (if the network plugin touches it this run) and the image import it waits for. */
function needsOf(container: DesiredContainer, imageActions: Set<string>): ResourceRef[] {
  const needs: ResourceRef[] = [];
  for (const bridge of new Set((container.nics ?? []).map((nic) => nic.bridge)))
    needs.push(linkRef(bridge));
  // A bridge that does not exist yet may be an OVS bridge the network plugin adds.
  if (container.nics?.some((nic) => nic.kind === undefined)) needs.push(ovsDatabaseRef);
  if (imageActions.has(container.image)) needs.push(imageRef(container.image));
  // A project the file declares is created first (the need is dropped when it has no action).
  if (container.project !== defaultProject) needs.push(projectRef(container.project));
  // A network or volume with no action this run is dropped from the needs by the engine.
  for (const network of new Set((container.networks ?? []).map((attached) => attached.network)))
    needs.push(networkRef(container.project, network));
  for (const attached of container.attached ?? [])
    needs.push(volumeRef(container.project, attached.pool, attached.volume));
  return needs;
}

/**
 * A container's create waits for its profiles' actions of this run, and so does a change of
 * its profiles (its project's, needsOf). A profile is the project's own or, when the project
 * has none, `default`'s: both are looked for.
 */
function addObjectNeeds(actions: LxcAction[], objects: readonly LxcAction[]): void {
  for (const action of actions) {
    if (action.resource !== "container" || action.kind === "delete") continue;
    if (action.kind === "modify" && !action.changes.some((c) => c.path === "profiles")) continue;
    const { project, profiles } = action.after;
    const scopes = [...new Set([project, defaultProject])];
    const wanted = profiles
      .flatMap((name) => scopes.map((scope) => profileRef(scope, name)))
      .filter((ref) => objects.some((object) => object.kind !== "delete" && sameRef(object, ref)));
    if (wanted.length > 0) action.needs = [...(action.needs ?? []), ...wanted];
  }
}

/** Every difference of a container that can be changed in place. */
export function containerChanges(desired: DesiredContainer, live: LiveContainer): FieldChange[] {
  const changes: FieldChange[] = placementChanges(desired, live);
  if (!sameList(desired.profiles, live.profiles)) {
    changes.push({
      path: "profiles",
      before: listWords(live.profiles),
      after: listWords(desired.profiles),
    });
  }
  for (const key of unionKeys(desired.config, live.config)) {
    const before = live.config[key];
    const after = desired.config[key];
    // The mark of a restore (backup.ts) stays until a file names another backup.
    if (key === tags.backup && after === undefined) continue;
    if (before !== after) changes.push(change(`config.${key}`, before, after));
  }
  const replugged = new Set<string>();
  for (const key of unionKeys(desired.devices, live.devices)) {
    const before = live.devices[key];
    const after = desired.devices[key];
    // A root disk of the container's own (incus init --storage) is Incus's, not the file's.
    if (after === undefined && before !== undefined && isRootDisk(before)) continue;
    if (!sameDevice(before, after)) {
      changes.push(
        change(
          `devices.${key}`,
          before === undefined ? undefined : deviceWords(before),
          after === undefined ? undefined : deviceWords(after),
        ),
      );
      if (before?.type === "nic" || after?.type === "nic") replugged.add(key);
    }
  }
  if (desired.description !== undefined && desired.description !== live.put.description)
    changes.push(change("description", live.put.description, desired.description));
  if (desired.ephemeral !== undefined && desired.ephemeral !== live.put.ephemeral)
    changes.push({ path: "ephemeral", before: live.put.ephemeral, after: desired.ephemeral });
  changes.push(
    ...snapshotChanges(desired.snapshots, live.snapshots, desired.config["snapshots.pattern"]),
  );
  changes.push(...ownerChanges(desired, live));
  changes.push(...fileChanges(desired, live));
  const running = live.status === "running";
  if (running !== desired.running)
    changes.push({ path: "running", before: running, after: desired.running });
  // The NIC config is right but the kernel's view drifted (renamed or unplugged by hand).
  // When the NIC config itself changes, Incus re-plugs the NIC and that settles both.
  if (running && desired.running && desired.nics !== undefined) {
    changes.push(...linkDrift(desired.nics, live, replugged));
    // Taken down inside (by hand, or left down by a re-plug): the container is cut off.
    const eth0 = desired.nics.some((nic) => nic.device === nicDevice);
    if (eth0 && !replugged.has(nicDevice) && live.nicUp === false)
      changes.push(change(nicStatePath, "down", "up"));
  }
  return changes;
}

/** The change that says the container's own eth0 is down. */
export const nicStatePath = `${nicDevice} inside`;

/** A device in a person's words: `hubr0/vi601`, `/srv/data at /data (read-only)`. */
export function deviceWords(device: Devices[string]): string {
  if (device.type === "nic") {
    const where =
      (device.nictype === "macvlan" && device.parent !== undefined
        ? `macvlan on ${device.parent}`
        : device.parent) ??
      (device.network === undefined
        ? `${device.nictype ?? "unattached"} NIC`
        : `network ${device.network}`);
    return `${device.host_name === undefined ? where : `${where}/${device.host_name}`}${nicExtras(device)}`;
  }
  if (device.type === "disk" && device.source !== undefined && device.path !== undefined) {
    const what =
      device.pool === undefined ? device.source : `volume ${device.source} of pool ${device.pool}`;
    const shifted = device.shift === "true" ? " (shifted)" : "";
    return `${what} at ${device.path}${device.readonly === "true" ? " (read-only)" : ""}${shifted}`;
  }
  const rest = Object.entries(device)
    .filter(([key]) => key !== "type")
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, value]) => `${key} ${value}`);
  return [device.type ?? "device", ...rest].join(", ");
}

/** What a NIC has besides where it is plugged (`nics[]`), so a change of it reads as one. */
function nicExtras(device: Devices[string]): string {
  return ["vlan", "mtu", "hwaddr", "ipv4.address", "ipv6.address"]
    .flatMap((key) => (device[key] === undefined ? [] : [` ${key} ${device[key]}`]))
    .join("");
}

function listWords(list: readonly string[]): string {
  return list.length === 0 ? "(none)" : list.join(", ");
}

export function isRootDisk(device: Devices[string]): boolean {
  return device.type === "disk" && device.path === "/";
}

export function change(path: string, before: unknown, after: unknown): FieldChange {
  return {
    path,
    ...(before === undefined ? {} : { before }),
    ...(after === undefined ? {} : { after }),
  };
}

/** Why a container's modify waits: a restart or a move the file did not allow. */
function heldOf(
  container: DesiredContainer,
  changes: readonly FieldChange[],
  atStart: readonly string[],
): { held?: string } {
  const move = changes.find((change) => change.path === locationPath);
  const held = [
    ...(move !== undefined && container.allowMove !== true ? [heldMove(move)] : []),
    ...(atStart.length > 0 && !container.restartAllowed ? [heldReason(atStart)] : []),
  ];
  return held.length === 0 ? {} : { held: held.join("; ") };
}

export function describe(change: FieldChange): string {
  if (change.path === "running") return change.after ? "start" : "stop";
  const move = describeMove(change);
  if (move !== undefined) return move;
  if (change.path === restartPath) return `${change.after} (restart required)`;
  if (change.path === "ephemeral") return change.after ? "make ephemeral" : "make persistent";
  if (change.path.startsWith("snapshots."))
    return `${change.after === undefined ? "delete" : "take"} snapshot ${change.path.slice(10)}`;
  const drift = describeDrift(change);
  if (drift !== undefined) return drift;
  if (change.path === nicStatePath) return `bring ${nicDevice} up inside (it is down)`;
  const provisioning = describeCloudInit(change) ?? describeOwner(change) ?? describeFile(change);
  if (provisioning !== undefined) return provisioning;
  if (change.path.startsWith("devices.")) {
    const device = change.path.slice("devices.".length);
    if (change.before === undefined) return `add device ${device}: ${change.after}`;
    if (change.after === undefined) return `remove device ${device}: ${change.before}`;
    const verb = device === nicDevice ? "re-plug" : "change device";
    return `${verb} ${device}: ${change.before} → ${change.after}`;
  }
  if (!Object.hasOwn(change, "before")) return `add ${change.path}`;
  if (!Object.hasOwn(change, "after")) return `remove ${change.path}`;
  if (typeof change.before === "string" && typeof change.after === "string") {
    return `${change.path} ${change.before || "(empty)"} → ${change.after || "(empty)"}`;
  }
  return `change ${change.path}`;
}

export function unionKeys(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

export function sameDevice(
  a: Devices[string] | undefined,
  b: Devices[string] | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = unionKeys(a, b);
  return keys.every((key) => a[key] === b[key]);
}

function short(fingerprint: string): string {
  return fingerprint.slice(0, 12);
}
