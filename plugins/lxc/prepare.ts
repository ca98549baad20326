/**
 * Turns `plugins.lxc` into what diff compares: the op-dbus `properties` bag folded into the
 * first-class fields (a value given twice must agree), defaults resolved, everything checked
 * against the host (image aliases, mount sources, duplicate ids/names/veths). Every problem is
 * reported at once with its JSON path; nothing on the host changes.
 */

import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  lstatSync,
  readdirSync,
  realpathSync,
} from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { OpError } from "../../src/errors.js";
import { openRegularFile } from "../../src/files.js";
import { blobDirectory } from "../../src/ledger/blobs.js";
import type { Ctx } from "../../src/plugin.js";
import { scheduleProblem } from "./containers/schedule.js";
import { snapshotsTag } from "./containers/snapshots.js";
import { checkFiles } from "./files/check.js";
import { filesTagOf, prepareFiles } from "./files/prepare.js";
import { checkAbsentImages } from "./images/prepare.js";
import { checkTarballAliases, prepareTarballImage } from "./images/tarball-prepare.js";
import type { DesiredAbsentImage } from "./images/types.js";
import { attachNetwork, type DeclaredLink } from "./networks/prepare.js";
import { checkNicsOnHost } from "./nics/host.js";
import { networkConfigKey, nicName, prepareNics } from "./nics/prepare.js";
import { prepareObjects } from "./objects-prepare.js";
import {
  hostPathExposure,
  type OtherMount,
  opDefaultDirectories,
  removalRefusal,
  resolveFromStateDir,
} from "./paths.js";
import { checkProfiles } from "./profiles/check.js";
import { checkContainerRefs, prepareProfiles } from "./profiles/prepare.js";
import { checkProjects } from "./projects/check.js";
import { prepareProjects } from "./projects/prepare.js";
import { ownerOf } from "./provision/mounts.js";
import { prepareProvision, provisioned } from "./provision/prepare.js";
import { elsewhere } from "./query.js";
import { containerId, defaultProject } from "./refs.js";
import { runIncus } from "./remote.js";
import {
  type BridgeKind,
  type DesiredAbsent,
  type DesiredContainer,
  type DesiredImage,
  type DesiredMount,
  type Devices,
  type DirectoryRemoval,
  type LiveContainer,
  type LxcContainerSpec,
  type LxcDesired,
  type LxcLive,
  type LxcSection,
  nicDevice,
  type RemoteSource,
  tags,
} from "./types.js";
import { defaultVethName } from "./veths.js";
import { attachVolumes } from "./volumes/check.js";

export const fallbackImage = "images:debian/12";
export const defaultStopTimeout = 30;
export const meshBridge = "mesh";

const namePattern = /^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const ifnamePattern = /^(?!\.\.?$)[^/:\s]{1,15}$/;
const knownProperties = new Set([
  "network_type",
  "memory",
  "swap",
  "cores",
  "hostname",
  "template",
  "onboot",
  "protection",
  "unprivileged",
  "nameserver",
  "searchdomain",
]);

export interface PrepareEnv {
  /** The settings' default image (OP_DEFAULT_IMAGE, ctx.settings.defaultImage). */
  defaultImage?: string;
  /** The incus client's remotes (name → server, protocol), read only when a file names one. */
  remotes?: () => Promise<Record<string, { server: string; protocol: string }>>;
  /** Open vSwitch bridges, read only when a file names a bridge the query did not see. */
  ovsBridges?: () => Promise<Record<string, BridgeKind>>;
  /** op's own directories (ledger, key, lock, cache): never mounted read-write freely, never removed. */
  opDirs?: readonly string[];
  /** The links the file's network section declares: no managed network may take their names. */
  declaredLinks?: readonly DeclaredLink[];
}

/** A problem found while preparing; all are collected and thrown together. */
class Problems {
  readonly lines: string[] = [];
  add(path: string, message: string): void {
    this.lines.push(`${path}: ${message}`);
  }
}

export async function prepareLxc(
  section: LxcSection,
  liveState: LxcLive | Promise<LxcLive>,
  ctx: Ctx,
  env: PrepareEnv = {},
): Promise<LxcDesired> {
  const base = "/plugins/lxc";
  const problems = new Problems();
  if (section.backend === "lxc") {
    throw new OpError(
      "invalid-state",
      `${base}/backend: the lxc backend (classic lxc-* tools) is not implemented yet`,
      {
        hint: 'use "backend": "incus" (or leave it out)',
      },
    );
  }
  const stateDir = ctx.options?.stateDir;
  const opDirs = env.opDirs ?? opDefaultDirectories;
  // Image tarballs are hashed while Incus answers the query.
  const absentImages: DesiredAbsentImage[] = [];
  const images = await prepareImages(section, problems, ctx.cacheDir, stateDir, absentImages);
  const live = await liveState;
  const declared = new Set(images.map((image) => image.alias));
  const defaultImage = section.default_image ?? env.defaultImage ?? fallbackImage;

  const containers: DesiredContainer[] = [];
  const absent: DesiredAbsent[] = [];
  const entries = checkEntries(section, base, defaultImage, problems, {
    resolvePath: (path) => resolveFromStateDir(path, stateDir),
    opDirs,
  });
  for (const { spec, container, path, problemsBefore } of entries) {
    if ((spec.ensure ?? "present") === "absent") {
      absent.push({
        name: container.name,
        project: container.project,
        path,
        ...(spec.adopt === true ? { adopt: true as const } : {}),
        unprotect: container.config["security.protection.delete"] === "false",
        stopTimeout: container.stopTimeout,
        removeSources: removals(container, path, live, opDirs, problems),
        ...(spec.rollback === "snapshot" ? { rollbackSnapshot: true as const } : {}),
      });
      continue;
    }
    for (const [m, mount] of container.mounts.entries()) {
      const real = realpathOf(mount.source);
      if (real === undefined) {
        problems.add(
          `${path}/mounts/${m}/source`,
          `mount source ${mount.source} does not exist on this host`,
        );
        continue;
      }
      // The literal path was checked with the file; a symlink may still lead somewhere else.
      if (real !== mount.source)
        checkHostPath(mount, real, `${path}/mounts/${m}`, opDirs, problems);
    }
    if (spec.adopt === true || ctx.options?.adopt === true) container.adopt = true;
    checkAdoptable(container, live, problems);
    if (problems.lines.length > problemsBefore) continue;
    if (ctx.options?.allowRestart === true) container.restartAllowed = true;
    // One restored from a backup needs its backup, not its image (the alias may be gone).
    if (container.backup !== undefined) {
      checkBackup(container.backup, `${path}/backup`, ctx, problems);
      containers.push(container);
      continue;
    }
    await resolveImage(
      container,
      `${path}/${spec.image === undefined ? "properties/template" : "image"}`,
      {
        live,
        declared,
        env,
        problems,
        explicit: spec.image !== undefined || spec.properties?.template !== undefined,
      },
    );
    // A remote's bridges and links are on its own host: Incus checks them when it starts it.
    if (live.remote === undefined) {
      for (const nic of container.nics ?? []) {
        const kind =
          live.bridges[nic.bridge] ??
          (env.ovsBridges === undefined ? undefined : (await env.ovsBridges())[nic.bridge]);
        if (kind !== undefined) nic.kind = kind;
      }
      checkNicsOnHost(spec, container, path, {
        sys: () => ctx.host.sys,
        declaredLinks: env.declaredLinks ?? [],
        problems,
      });
    }
    await prepareFiles(container, live, { incus: runIncus(ctx), opDirs, problems });
    containers.push(container);
  }
  const projects = prepareProjects(section, live, base);
  const profiles = prepareProfiles(section, live, projects, base, problems);
  checkContainerRefs(containers, live, projects, profiles, problems);
  const { networks, volumes } = prepareObjects(section, base, live, problems, {
    containers,
    absent,
    prune: section.prune ?? false,
    profiles,
    declaredLinks: env.declaredLinks ?? [],
    // A remote's host links and addresses cannot be read from here: nothing to clash with.
    sys: () => (live.remote === undefined ? ctx.host.sys : elsewhere),
  });
  checkAbsentImages(absentImages, containers, live, problems);
  checkTarballAliases(images, live, problems);
  if (problems.lines.length > 0) {
    throw new OpError(
      "invalid-state",
      `plugins.lxc: ${problems.lines.length === 1 ? "1 problem" : `${problems.lines.length} problems`}`,
      {
        details: problems.lines,
        hint: "each line gives the JSON path of a problem; nothing was changed",
      },
    );
  }
  return {
    prune: section.prune ?? false,
    images,
    containers,
    absent,
    networks,
    volumes,
    pruneImages: section.prune_images ?? false,
    absentImages,
    projects,
    profiles,
  };
}

/** The local device types a container entry can give (its NICs, mounts and volumes). */
const modelledDevices: ReadonlySet<string> = new Set(["nic", "disk"]);

/**
 * A container op did not create is adopted as the file has it, devices included: one with a
 * device the file has no words for would lose it, so it cannot be adopted at all.
 */
function checkAdoptable(container: DesiredContainer, live: LxcLive, problems: Problems): void {
  const current = live.containers.find(
    (c) => c.project === container.project && c.name === container.name,
  );
  if (current === undefined || current.managed) return;
  for (const [name, device] of Object.entries(current.devices)) {
    const type = device.type ?? "";
    if (modelledDevices.has(type)) continue;
    problems.add(
      container.path,
      `container ${container.name} exists, op did not create it, and its device "${name}" is of type ${type || "(none)"}, which a state file cannot express, so op cannot adopt it (adopting would remove the device); remove the device by hand, or leave the container out of the file`,
    );
  }
}

interface CheckedEntry {
  spec: LxcContainerSpec;
  container: DesiredContainer;
  path: string;
  /** How many problems were found before this entry's own. */
  problemsBefore: number;
}

/**
 * The checks that need only the file, shared by `op validate` (check.ts) and prepare: each
 * entry normalised, ids, names and veths used once, mounts of host directories allowed.
 */
export function checkEntries(
  section: LxcSection,
  base: string,
  defaultImage: string,
  problems: { lines: string[]; add(path: string, message: string): void },
  options: { resolvePath: (path: string) => string; opDirs: readonly string[] },
): CheckedEntry[] {
  const seen = {
    id: new Map<string, string>(),
    name: new Map<string, string>(),
    veth: new Map<string, string>(),
  };
  const unique = (kind: keyof typeof seen, value: string, path: string) => {
    const first = seen[kind].get(value);
    if (first !== undefined) problems.add(path, `${kind} "${value}" is also used by ${first}`);
    else seen[kind].set(value, path);
  };
  checkProjects(section, base, problems);
  checkProfiles(section, base, problems);
  const entries: CheckedEntry[] = [];
  for (const [index, spec] of (section.containers ?? []).entries()) {
    const path = `${base}/containers/${index}`;
    const problemsBefore = problems.lines.length;
    if (typeof spec.id === "number" && !Number.isSafeInteger(spec.id)) {
      problems.add(
        `${path}/id`,
        `id ${spec.id} is not a safe integer (at most ${Number.MAX_SAFE_INTEGER}): it cannot be read exactly; write it as a string or use a smaller id`,
      );
    }
    const container = prepareContainer(spec, path, defaultImage, problems, options.resolvePath);
    // Ids and names are unique within a project; veths host-wide (one kernel namespace).
    unique("id", containerId(container.project, container.id), `${path}/id`);
    unique(
      "name",
      containerId(container.project, container.name),
      spec.name === undefined ? `${path}/id` : `${path}/name`,
    );
    const present = (spec.ensure ?? "present") === "present";
    for (const nic of present ? (container.nics ?? []) : []) {
      const listedAt = spec.nics?.findIndex((listed, k) => nicName(listed, k) === nic.device);
      const where =
        listedAt !== undefined
          ? `${path}/nics/${listedAt}`
          : spec.veth === undefined
            ? `${path}/id`
            : `${path}/veth`;
      unique("veth", nic.veth, where);
    }
    for (const [m, mount] of container.mounts.entries()) {
      // A relative path is known only with the state file's directory: prepare checks it.
      if (!isAbsolute(mount.source)) continue;
      if (present)
        checkHostPath(mount, mount.source, `${path}/mounts/${m}`, options.opDirs, problems);
      if (!mount.preserve) {
        const refusal = removalRefusal(mount.source, options.opDirs, []);
        if (refusal !== undefined) {
          problems.add(
            `${path}/mounts/${m}/preserve`,
            `op will not remove ${refusal}; keep preserve true`,
          );
        }
      }
    }
    entries.push({ spec, container, path, problemsBefore });
  }
  return entries;
}

/** A read-write mount of a directory the host needs must say `allow_host_path: true`. */
function checkHostPath(
  mount: DesiredMount,
  real: string,
  path: string,
  opDirs: readonly string[],
  problems: { add(path: string, message: string): void },
): void {
  if (mount.readonly || mount.allowHostPath) return;
  const exposure = hostPathExposure(real, opDirs);
  if (exposure === undefined) return;
  const shown = real === mount.source ? real : `${mount.source} (${real})`;
  problems.add(
    `${path}/source`,
    `mounting ${shown} read-write gives the container a directory the host needs (${exposure}); add "readonly": true, or "allow_host_path": true if that is what you mean`,
  );
}

/**
 * The directories of `preserve: false` mounts op will remove after deleting the container:
 * only ones its live configuration mounts (compared by realpath), never a directory the host
 * needs nor one at or above another instance's mount. Anything else is a problem.
 */
function removals(
  container: DesiredContainer,
  path: string,
  live: LxcLive,
  opDirs: readonly string[],
  problems: Problems,
): DirectoryRemoval[] {
  const current = live.containers.find(
    (c) => c.name === container.name && c.project === container.project,
  );
  if (current === undefined) return [];
  const mounted = new Set(diskSources(current).flatMap((source) => realpathOf(source) ?? []));
  const others: OtherMount[] = [
    ...live.containers
      .filter((other) => other !== current)
      .flatMap((other) => diskSources(other).map((source) => ({ instance: other.name, source }))),
    ...(live.otherMounts ?? []),
  ].map((mount) => ({ ...mount, source: realpathOf(mount.source) ?? resolve(mount.source) }));
  const found: DirectoryRemoval[] = [];
  for (const [m, mount] of container.mounts.entries()) {
    if (mount.preserve) continue;
    const where = `${path}/mounts/${m}/source`;
    const real = realpathOf(mount.source);
    if (real === undefined) continue; // Already gone: nothing to remove.
    if (!mounted.has(real)) {
      problems.add(
        where,
        `${container.name} does not mount ${mount.source}${real === mount.source ? "" : ` (${real})`} (its live configuration mounts ${[...mounted].join(", ") || "no host directory"}); op removes only a directory the container mounts: fix the source or set "preserve": true`,
      );
      continue;
    }
    const refusal = removalRefusal(real, opDirs, others);
    if (refusal !== undefined) {
      problems.add(
        `${path}/mounts/${m}/preserve`,
        `op will not remove ${refusal}; keep preserve true`,
      );
      continue;
    }
    found.push({ path: real, bytes: directoryBytes(real) });
  }
  return found;
}

/** Host directories a container's own disk devices mount (not its root disk, not volumes). */
export function diskSources(container: LiveContainer): string[] {
  return Object.values(container.devices)
    .filter(
      (device) =>
        device.type === "disk" &&
        device.path !== "/" &&
        device.pool === undefined &&
        device.source?.startsWith("/"),
    )
    .map((device) => device.source as string);
}

function realpathOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** Bytes of the regular files under a directory, symlinks not followed. */
function directoryBytes(dir: string): number {
  let total = 0;
  const pending = [dir];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let names: string[];
    try {
      names = readdirSync(next);
    } catch {
      continue;
    }
    for (const name of names) {
      const child = join(next, name);
      try {
        const stats = lstatSync(child);
        if (stats.isDirectory()) pending.push(child);
        else if (stats.isFile()) total += stats.size;
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return total;
}

/** Properties of the op-dbus bag op does not use, as warnings with their JSON paths. */
export function unusedProperties(section: LxcSection, base: string): string[] {
  return (section.containers ?? []).flatMap((spec, index) =>
    Object.keys(spec.properties ?? {})
      .filter((key) => !knownProperties.has(key))
      .map((key) => `${base}/containers/${index}/properties/${key}: not used by op (ignored)`),
  );
}

/** The Incus name of a container entry: its `name`, else `ct{id}` for a numeric id, else the id. */
export function containerNameOf(spec: Pick<LxcContainerSpec, "id" | "name">): string {
  const id = String(spec.id);
  return spec.name ?? (/^[0-9]+$/.test(id) ? `ct${id}` : id);
}

/** One container entry, normalised. Conflicts and invalid values go to `problems`. */
export function prepareContainer(
  spec: LxcContainerSpec,
  path: string,
  defaultImage: string,
  problems: { add(path: string, message: string): void },
  resolvePath: (path: string) => string = (path) => path,
): DesiredContainer {
  const props = spec.properties ?? {};
  const id = String(spec.id);
  const name = containerNameOf(spec);
  if (!namePattern.test(name)) {
    problems.add(
      spec.name === undefined ? `${path}/id` : `${path}/name`,
      `"${name}" is not a valid container name (1-63 letters, digits and -, starting with a letter, not ending with -)`,
    );
  }
  // Each setting may come from several places; they must agree.
  const pick = <T>(
    what: string,
    sources: [string, T | undefined][],
    same: (a: T, b: T) => boolean = Object.is,
  ): T | undefined => {
    const given = sources.filter((s): s is [string, T] => s[1] !== undefined);
    const [first, ...rest] = given;
    if (first === undefined) return undefined;
    const other = rest.find(([, value]) => !same(first[1], value));
    if (other !== undefined) {
      problems.add(
        path,
        `${what} is given twice with different values: ${first[0]} = ${JSON.stringify(first[1])}, ${other[0]} = ${JSON.stringify(other[1])}`,
      );
    }
    return first[1];
  };
  const raw = Object.fromEntries(
    Object.entries(spec.config ?? {}).map(([k, v]) => [k, v === undefined ? undefined : String(v)]),
  );
  const rawKey = (key: string): [string, string | undefined] => [`${path}/config/${key}`, raw[key]];

  const image = pick("the image", [
    [`${path}/image`, spec.image],
    [`${path}/properties/template`, props.template],
  ]);
  const networkType = pick("network_type", [
    [`${path}/network_type`, spec.network_type],
    [`${path}/properties/network_type`, props.network_type],
  ]);
  const listed = prepareNics(spec, path, id, problems);
  const bridge =
    listed === undefined
      ? (spec.bridge ?? (networkType === "netmaker" ? meshBridge : undefined))
      : undefined;
  const veth =
    listed === undefined
      ? (spec.veth ?? (bridge === undefined ? undefined : defaultVethName(id)))
      : undefined;
  if (veth !== undefined && bridge === undefined) {
    problems.add(`${path}/veth`, `a veth name needs a bridge to enrol it in; add "bridge"`);
  }
  if (veth !== undefined && !ifnamePattern.test(veth)) {
    problems.add(
      spec.veth === undefined ? `${path}/id` : `${path}/veth`,
      `veth "${veth}" is not a valid interface name (at most 15 characters, no /, : or whitespace)${spec.veth === undefined ? '; set "veth"' : ""}`,
    );
  }

  const config: Record<string, string> = {};
  const set = (key: string, value: string | undefined) => {
    if (value !== undefined) config[key] = value;
  };
  for (const [key, value] of Object.entries(raw)) set(key, value);

  set(
    "limits.cpu",
    pick("limits.cpu", [
      [`${path}/limits/cpu`, spec.limits?.cpu === undefined ? undefined : String(spec.limits.cpu)],
      [`${path}/properties/cores`, props.cores === undefined ? undefined : String(props.cores)],
      rawKey("limits.cpu"),
    ]),
  );
  set(
    "limits.memory",
    pick(
      "limits.memory",
      [
        [
          `${path}/limits/memory`,
          spec.limits?.memory === undefined ? undefined : memoryValue(spec.limits.memory),
        ],
        [
          `${path}/properties/memory`,
          props.memory === undefined ? undefined : memoryValue(props.memory),
        ],
        rawKey("limits.memory"),
      ],
      (a, b) => memoryBytes(a) !== undefined && memoryBytes(a) === memoryBytes(b),
    ),
  );
  set(
    "limits.memory.swap",
    pick("swap", [
      [
        `${path}/properties/swap`,
        props.swap === undefined ? undefined : String(Number(props.swap) > 0),
      ],
      rawKey("limits.memory.swap"),
    ]),
  );
  const flag = (key: string, what: string, prop: string, value: unknown, invert = false) =>
    set(
      key,
      pick(what, [
        [
          `${path}/properties/${prop}`,
          value === undefined ? undefined : String(flagValue(value) !== invert),
        ],
        rawKey(key),
      ]),
    );
  const bootPath = `${path}/boot`;
  const given = (value: number | boolean | string | undefined) =>
    value === undefined ? undefined : String(value);
  set(
    "boot.autostart",
    pick("autostart", [
      [`${bootPath}/autostart`, given(spec.boot?.autostart)],
      [
        `${path}/properties/onboot`,
        props.onboot === undefined ? undefined : String(flagValue(props.onboot)),
      ],
      rawKey("boot.autostart"),
    ]),
  );
  set(
    "boot.autostart.priority",
    pick("boot priority", [
      [`${bootPath}/priority`, given(spec.boot?.priority)],
      rawKey("boot.autostart.priority"),
    ]),
  );
  set(
    "boot.stop.priority",
    pick("stop priority", [
      [`${bootPath}/stop_priority`, given(spec.boot?.stop_priority)],
      rawKey("boot.stop.priority"),
    ]),
  );
  for (const part of ["schedule", "expiry", "pattern"] as const) {
    const key = `snapshots.${part}`;
    const value = pick(key, [[`${path}/snapshots/${part}`, spec.snapshots?.[part]], rawKey(key)]);
    set(key, value);
    const problem = part === "schedule" && value !== undefined ? scheduleProblem(value) : undefined;
    if (problem !== undefined) {
      problems.add(
        spec.snapshots?.schedule === undefined
          ? `${path}/config/snapshots.schedule`
          : `${path}/snapshots/schedule`,
        `not a schedule Incus accepts: ${problem}`,
      );
    }
  }
  const keep = (spec.snapshots?.keep ?? []).map((snapshot) => ({
    name: snapshot.name,
    stateful: snapshot.stateful ?? false,
  }));
  for (const [k, snapshot] of keep.entries()) {
    if (keep.findIndex((other) => other.name === snapshot.name) < k)
      problems.add(
        `${path}/snapshots/keep/${k}/name`,
        `snapshot "${snapshot.name}" is listed twice`,
      );
  }
  const snapshots =
    keep.length > 0 || spec.snapshots?.prune === true
      ? { keep, prune: spec.snapshots?.prune ?? false }
      : undefined;
  if (snapshots !== undefined) config[tags.snapshots] = snapshotsTag(snapshots);
  if (spec.ephemeral === true && spec.running === false) {
    problems.add(
      `${path}/ephemeral`,
      'an ephemeral container is deleted when it stops, so it cannot be "running": false',
    );
  }
  flag("security.protection.delete", "delete protection", "protection", props.protection);
  flag("security.privileged", "privileged", "unprivileged", props.unprivileged, true);

  if (props.hostname !== undefined) {
    const rawLxc = raw["raw.lxc"] ?? "";
    const uts = /^\s*lxc\.uts\.name\s*=\s*(\S+)\s*$/m.exec(rawLxc)?.[1];
    if (uts !== undefined && uts !== props.hostname) {
      problems.add(
        path,
        `the hostname is given twice: ${path}/properties/hostname = "${props.hostname}", ${path}/config/raw.lxc sets lxc.uts.name = ${uts}`,
      );
    } else if (uts === undefined) {
      config["raw.lxc"] =
        `${rawLxc}${rawLxc === "" || rawLxc.endsWith("\n") ? "" : "\n"}lxc.uts.name = ${props.hostname}\n`;
    }
  }
  const resolvConf = resolvConfOf(props.nameserver, props.searchdomain);
  // The tag says what op wrote, so a change in the file shows as a change of config.
  if (resolvConf !== undefined) config[tags.dns] = dnsTag(props.nameserver, props.searchdomain);

  const provision = prepareProvision(spec, path, config, problems, resolvePath);
  const files = checkFiles(spec.files ?? [], path, problems, resolvePath);
  // The query reads only the paths this tag lists (files/query.ts).
  if (files.length > 0) config[tags.files] = filesTagOf(files);
  const chosenImage = image ?? defaultImage;
  config[tags.managed] = "true";
  config[tags.id] = id;
  config[tags.image] = chosenImage;
  if (spec.backup !== undefined) config[tags.backup] = spec.backup;

  const devices: Devices = { ...listed?.devices };
  if (listed?.networkConfig !== undefined) {
    if (raw[networkConfigKey] !== undefined) {
      problems.add(
        `${path}/config/${networkConfigKey}`,
        `op writes ${networkConfigKey} itself for the static addresses of "nics": give the addresses in one place`,
      );
    }
    config[networkConfigKey] = listed.networkConfig;
  }
  if (bridge !== undefined && veth !== undefined) {
    devices[nicDevice] = {
      type: "nic",
      nictype: "bridged",
      parent: bridge,
      host_name: veth,
      name: nicDevice,
    };
  }
  const mounts: DesiredMount[] = [];
  for (const [m, mount] of (spec.mounts ?? []).entries()) {
    const device = `mnt${mount.path.replace(/[^A-Za-z0-9]+/g, "-").replace(/-$/, "")}`;
    if (devices[device] !== undefined) {
      problems.add(`${path}/mounts/${m}/path`, `${mount.path} is mounted twice`);
      continue;
    }
    const source = resolvePath(mount.source);
    devices[device] = {
      type: "disk",
      source,
      path: mount.path,
      ...(mount.readonly ? { readonly: "true" } : {}),
      ...(mount.shift ? { shift: "true" } : {}),
    };
    mounts.push({
      device,
      source,
      path: mount.path,
      preserve: mount.preserve ?? true,
      readonly: mount.readonly ?? false,
      allowHostPath: mount.allow_host_path ?? false,
      ...ownerOf(mount),
    });
  }
  const network =
    listed === undefined ? attachNetwork(spec, path, bridge, devices, problems) : undefined;
  const nics =
    listed?.bridged ??
    (bridge !== undefined && veth !== undefined ? [{ device: nicDevice, bridge, veth }] : []);
  const networks = listed?.networks ?? (network === undefined ? [] : [{ network, path }]);
  const attached = attachVolumes(spec, path, devices, problems);

  return {
    name,
    project: spec.project ?? defaultProject,
    id,
    path,
    image: chosenImage,
    running: spec.running ?? true,
    profiles: spec.profiles ?? ["default"],
    config,
    devices,
    ...(nics.length === 0 ? {} : { nics }),
    mounts,
    stopTimeout: spec.stop_timeout ?? defaultStopTimeout,
    ...(resolvConf === undefined ? {} : { resolvConf }),
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.ephemeral === undefined ? {} : { ephemeral: spec.ephemeral }),
    ...(snapshots === undefined ? {} : { snapshots }),
    restartAllowed: spec.restart === "allowed",
    ...(networks.length === 0 ? {} : { networks }),
    ...(attached.length === 0 ? {} : { attached }),
    ...(provisioned(spec) ? { provision } : {}),
    ...(files.length === 0 ? {} : { files }),
    ...(spec.rollback === "snapshot" ? { rollbackSnapshot: true as const } : {}),
    ...(spec.backup === undefined ? {} : { backup: spec.backup }),
    ...(spec.target === undefined ? {} : { target: spec.target }),
    ...(spec.allow_move === true ? { allowMove: true as const } : {}),
  };
}

/** A `backup` must be in op's image store, where the pre-image that names it put it. */
function checkBackup(hash: string, path: string, ctx: Ctx, problems: Problems): void {
  const dir = blobDirectory(ctx.settings?.ledgerDir ?? "");
  if (ctx.settings !== undefined && existsSync(join(dir, hash))) return;
  problems.add(
    path,
    `backup ${hash} is not in op's image store ${dir}; only op rollback's pre-images name backups (rollback: snapshot), and a restore needs the file they kept`,
  );
}

/** MiB as a number or numeric string → `NMiB`; strings with a unit or % stay as written. */
export function memoryValue(value: number | string): string {
  return typeof value === "number" || /^[0-9]+$/.test(value) ? `${value}MiB` : value;
}

const units: Record<string, number> = {
  "": 1,
  kB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

/** Bytes of an Incus memory value, to compare `2GiB` with `2048MiB`; undefined for `50%`. */
export function memoryBytes(value: string): number | undefined {
  const match = /^([0-9]+)([kMGT]i?B)?$/.exec(value);
  if (!match) return undefined;
  const unit = units[match[2] ?? ""] ?? (match[2] === "kiB" ? 1024 : undefined);
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

/** op-dbus yes/no values: true/false, 1/0, "1"/"0", "true"/"false", "yes"/"no". */
export function flagValue(value: unknown): boolean {
  return value === true || value === 1 || value === "1" || value === "true" || value === "yes";
}

const splitList = (text?: string) => (text ?? "").split(/[\s,]+/).filter(Boolean);

export function resolvConfOf(nameserver?: string, searchdomain?: string): string | undefined {
  if (nameserver === undefined && searchdomain === undefined) return undefined;
  const lines = [
    ...(searchdomain === undefined ? [] : [`search ${splitList(searchdomain).join(" ")}`]),
    ...splitList(nameserver).map((server) => `nameserver ${server}`),
  ];
  return `# written by op (plugins.lxc properties nameserver/searchdomain)\n${lines.join("\n")}\n`;
}

/** `user.op.dns`: the servers and search domains op wrote to /etc/resolv.conf. */
export function dnsTag(nameserver?: string, searchdomain?: string): string {
  return `nameserver=${splitList(nameserver).join(",")};search=${splitList(searchdomain).join(",")}`;
}

async function resolveImage(
  container: DesiredContainer,
  path: string,
  context: {
    live: LxcLive;
    declared: Set<string>;
    env: PrepareEnv;
    problems: Problems;
    explicit: boolean;
  },
): Promise<void> {
  const { image } = container;
  const where = context.explicit
    ? path
    : `${path.replace(/\/(image|properties\/template)$/, "")} (default image)`;
  const colon = image.indexOf(":");
  if (colon > 0) {
    const remoteName = image.slice(0, colon);
    const remotes = context.env.remotes === undefined ? {} : await context.env.remotes();
    const remote = remotes[remoteName];
    if (remote === undefined) {
      context.problems.add(
        where,
        `image "${image}" names the remote "${remoteName}", which the incus client does not know (incus remote list)`,
      );
      return;
    }
    const source: RemoteSource = {
      server: remote.server,
      protocol: remote.protocol,
      alias: image.slice(colon + 1),
    };
    container.remote = source;
    return;
  }
  if (context.live.aliases[image] === undefined && !context.declared.has(image)) {
    context.problems.add(
      where,
      `image alias "${image}" is not in the local image store; declare it under plugins.lxc.images, e.g. {"alias": "${image}", "metadata": "/path/metadata.tar.gz", "rootfs": "/path/rootfs.tar.gz"}, or import it with incus image import ... --alias ${image}`,
    );
  }
}

async function prepareImages(
  section: LxcSection,
  problems: Problems,
  cacheDir: string | undefined,
  stateDir: string | undefined,
  absentImages: DesiredAbsentImage[],
): Promise<DesiredImage[]> {
  const images: DesiredImage[] = [];
  const aliases = new Map<string, string>();
  const cache = await readHashCache(cacheDir);
  const used: HashCache = {};
  for (const [index, spec] of (section.images ?? []).entries()) {
    const path = `/plugins/lxc/images/${index}`;
    const first = aliases.get(spec.alias);
    if (first !== undefined) {
      problems.add(`${path}/alias`, `alias "${spec.alias}" is also declared by ${first}`);
      continue;
    }
    aliases.set(spec.alias, path);
    if (spec.ensure === "absent") {
      absentImages.push({ alias: spec.alias, path });
      continue;
    }
    if (spec.tarball !== undefined) {
      const image = await prepareTarballImage({ ...spec, tarball: spec.tarball }, path, {
        resolve: (file) => resolveFromStateDir(file, stateDir),
        cache,
        used,
        problems,
      });
      if (image !== undefined) images.push(image);
      continue;
    }
    if (spec.adapt !== undefined) {
      problems.add(
        `${path}/adapt`,
        '"adapt" goes with "tarball" only: a split image is imported as it is',
      );
      continue;
    }
    if (spec.metadata === undefined || spec.rootfs === undefined) {
      problems.add(path, 'an image to import needs "metadata" and "rootfs", or "tarball"');
      continue;
    }
    const files = {
      metadata: resolveFromStateDir(spec.metadata, stateDir),
      rootfs: resolveFromStateDir(spec.rootfs, stateDir),
    };
    // Opened without blocking and only as regular files: a FIFO or /dev/zero would hang.
    const opened = (["metadata", "rootfs"] as const).flatMap((part) => {
      try {
        return [{ part, ...openRegularFile(files[part], { what: `image ${part} tarball` }) }];
      } catch (error) {
        if (!(error instanceof OpError)) throw error;
        problems.add(`${path}/${part}`, error.message);
        return [];
      }
    });
    try {
      if (opened.length < 2) continue;
      const fingerprint = await fingerprintOf(opened, files, cache, used);
      images.push({ alias: spec.alias, path, ...files, fingerprint });
    } finally {
      for (const { fd } of opened) closeSync(fd);
    }
  }
  if (Object.keys(used).some((key) => cache[key] !== used[key]))
    await writeHashCache(cacheDir, used);
  return images;
}

type HashCache = Record<string, string>;
const hashCacheFile = "lxc-image-hashes.json";

async function readHashCache(cacheDir: string | undefined): Promise<HashCache> {
  if (cacheDir === undefined) return {};
  try {
    return JSON.parse(await readFile(join(cacheDir, hashCacheFile), "utf8")) as HashCache;
  } catch {
    return {};
  }
}

async function writeHashCache(cacheDir: string | undefined, cache: HashCache): Promise<void> {
  if (cacheDir === undefined) return;
  try {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(join(cacheDir, hashCacheFile), JSON.stringify(cache));
  } catch {
    // A cache that cannot be written only costs hashing again next time.
  }
}

/**
 * SHA-256 over the metadata tarball then the rootfs tarball: Incus's fingerprint of a split
 * image. Cached by path, size and mtime, since rootfs tarballs can be large. Read from the
 * descriptors already opened (and checked to be regular files).
 */
async function fingerprintOf(
  opened: readonly { part: "metadata" | "rootfs"; fd: number }[],
  files: { metadata: string; rootfs: string },
  cache: HashCache,
  used: HashCache,
): Promise<string> {
  const key = opened
    .map(({ part, fd }) => {
      const st = fstatSync(fd);
      return `${files[part]}:${st.size}:${st.mtimeMs}`;
    })
    .join("|");
  const cached = cache[key];
  if (cached !== undefined) {
    used[key] = cached;
    return cached;
  }
  // Fetched here: only files with images pay for loading node:crypto.
  const { createHash } = process.getBuiltinModule("node:crypto");
  const hash = createHash("sha256");
  for (const { fd } of opened) {
    for await (const chunk of createReadStream("", { fd, autoClose: false, start: 0 }))
      hash.update(chunk as Buffer);
  }
  const digest = hash.digest("hex");
  used[key] = digest;
  return digest;
}
