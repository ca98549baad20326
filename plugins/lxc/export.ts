/**
 * `op export` for the lxc plugin: the containers as an lxc section, written so that prepare
 * and diff find nothing to do on the same host. Config keys are given raw (`config`), which
 * prepare takes as they are; op's own tags are turned back into the fields that make them;
 * devices become `nics`, `mounts` and `volumes`. Without `all`, only containers op created
 * (`user.op.managed`).
 */

import type { LxcProfileSpec } from "../../src/generated/lxc.js";
import type { ExportedSection } from "../../src/plugin.js";
import { taggedPaths } from "./files/query.js";
import type { LiveFields } from "./objects.js";
import { defaultProject } from "./refs.js";
import type {
  Devices,
  LiveContainer,
  LxcContainerSpec,
  LxcLive,
  LxcMount,
  LxcSection,
} from "./types.js";
import { nicDevice, tags } from "./types.js";

type Nic = NonNullable<LxcContainerSpec["nics"]>[number];
type VolumeAttachment = NonNullable<LxcContainerSpec["volumes"]>[number];

export function exportLxc(live: LxcLive, options: { all: boolean }): ExportedSection {
  const notes: string[] = [];
  const containers = live.containers
    .filter((container) => options.all || container.managed)
    .map((container) => exportContainer(container, notes));
  const chosen = <T extends LiveFields & { inherited?: true }>(objects: readonly T[] = []) =>
    objects.filter((object) => !object.inherited && (options.all || object.managed));
  const projects = chosen(live.projects).map((project) =>
    exportObject("project", project, notes, { name: project.name }),
  );
  const profiles = chosen(live.profiles).map((profile) =>
    exportObject("profile", profile, notes, {
      name: profile.name,
      ...projectOf(profile),
      // Incus gives every device a type; the file's form is Incus's own.
      ...(Object.keys(profile.devices).length === 0
        ? {}
        : { devices: profile.devices as NonNullable<LxcProfileSpec["devices"]> }),
    }),
  );
  const networks = chosen(live.networks).flatMap((network) => {
    if (network.type !== "bridge") {
      notes.push(`network ${network.name}: type ${network.type} is not in op's format; left out`);
      return [];
    }
    return [exportObject("network", network, notes, { name: network.name, ...projectOf(network) })];
  });
  const volumes = chosen(live.volumes).flatMap((volume) => {
    if (volume.contentType !== "filesystem" && volume.contentType !== "block") {
      notes.push(
        `volume ${volume.pool}/${volume.name}: content type ${volume.contentType} is not in op's format; left out`,
      );
      return [];
    }
    return [
      exportObject("volume", volume, notes, {
        pool: volume.pool,
        name: volume.name,
        ...projectOf(volume),
        content_type: volume.contentType,
      }),
    ];
  });
  const section: LxcSection = {
    ...(projects.length === 0 ? {} : { projects }),
    ...(profiles.length === 0 ? {} : { profiles }),
    ...(networks.length === 0 ? {} : { networks: networks as LxcSection["networks"] }),
    ...(volumes.length === 0 ? {} : { volumes: volumes as LxcSection["volumes"] }),
    ...(containers.length === 0 ? {} : { containers }),
  };
  if (Object.keys(section).length === 0) return { section: undefined, notes };
  // Objects of a remote Incus: the section names it, or it would be applied to the local one.
  return {
    section: live.remoteSpec === undefined ? section : { remote: live.remoteSpec, ...section },
    notes,
  };
}

function projectOf(object: { project: string }): { project?: string } {
  return object.project === defaultProject ? {} : { project: object.project };
}

/**
 * A project, profile, network or volume: its description and its config as raw keys (Incus's
 * `volatile.*` are already out; op's tags are op's to write). One op did not create (only with
 * --all) is written as it is, without `adopt`: applied back it plans nothing, and op changes
 * it only once the entry adopts it (holding.ts). A note says so.
 */
function exportObject<Fields extends object>(
  kind: string,
  object: LiveFields,
  notes: string[],
  fields: Fields,
): Fields & { description?: string; config?: Record<string, string> } {
  const config = Object.fromEntries(
    Object.entries(object.config).filter(([key]) => !opTags.has(key)),
  );
  const name = Object.values(fields)
    .filter((v) => typeof v === "string")
    .join("/");
  if (!object.managed) {
    notes.push(
      `${kind} ${name}: op did not create it; op changes it (only the keys its entry gives) once the entry says "adopt": true`,
    );
  }
  // Incus's own default project has only config op may change (projects/check.ts).
  const described = object.description !== "" && !(kind === "project" && name === defaultProject);
  return {
    ...fields,
    ...(described ? { description: object.description } : {}),
    ...(Object.keys(config).length === 0 ? {} : { config }),
  };
}

/** The tags op writes itself, from the fields below: never given raw. */
const opTags: ReadonlySet<string> = new Set(Object.values(tags));

function exportContainer(container: LiveContainer, notes: string[]): LxcContainerSpec {
  const where = `container ${container.project === defaultProject ? "" : `${container.project}/`}${container.name}`;
  const note = (what: string) => notes.push(`${where}: ${what}`);
  const spec: LxcContainerSpec = { ...idOf(container) };
  if (container.image !== undefined) spec.image = container.image;
  else note("op did not create it, so the image it came from is not known; no image given");
  if (!container.managed)
    note(
      'op did not create it; op takes it over (tags it as its own) once its entry says "adopt": true',
    );
  if (container.project !== defaultProject) spec.project = container.project;
  spec.running = container.status === "running";
  if (!["running", "stopped"].includes(container.status))
    note(`its status is ${container.status}; exported as not running`);
  spec.profiles = [...container.profiles];
  if (container.put.description !== "") spec.description = container.put.description;
  if (container.put.ephemeral) spec.ephemeral = true;

  const config = Object.fromEntries(
    Object.entries(container.config).filter(([key]) => !opTags.has(key)),
  );
  if (Object.keys(config).length > 0) spec.config = config;
  const dns = container.config[tags.dns];
  if (dns !== undefined) {
    const { nameserver, search } = Object.fromEntries(
      dns.split(";").map((part) => part.split("=", 2) as [string, string]),
    );
    spec.properties = {
      ...(nameserver ? { nameserver } : {}),
      ...(search ? { searchdomain: search } : {}),
    };
  }
  const snapshots = container.config[tags.snapshots];
  if (snapshots !== undefined) {
    const [names = "", prune] = snapshots.split(";");
    const keep = names === "" ? [] : names.split(",").map((name) => ({ name }));
    spec.snapshots = { ...(keep.length > 0 ? { keep } : {}), ...(prune ? { prune: true } : {}) };
    if (keep.length > 0) note("whether its kept snapshots are stateful is not recorded; left out");
  }
  // Only hashes of declared files are read, never kept: their content cannot come back.
  const files = taggedPaths(container);
  if (files.length > 0)
    note(
      `its declared files are not exported (op reads their hashes, not their content); declare them again under "files": ${files.join(", ")}`,
    );
  Object.assign(spec, exportDevices(container.devices, note));
  for (const drift of linkDrift(container)) note(`drifted: ${drift}; the file says what Incus has`);
  return spec;
}

/**
 * Where the kernel's view of a running container's bridged NIC differs from Incus's config
 * (renamed or taken out of its bridge by hand): the file can only say the config.
 */
function linkDrift(container: LiveContainer): string[] {
  if (container.status !== "running") return [];
  const links: Record<string, { veth: string; master?: string } | undefined> = {
    ...container.nicLinks,
    [nicDevice]:
      container.veth === undefined
        ? undefined
        : { veth: container.veth, ...(container.master ? { master: container.master } : {}) },
  };
  return Object.entries(links).flatMap(([key, link]) => {
    const device = container.devices[key];
    if (link === undefined || device?.nictype !== "bridged") return [];
    return [
      ...(device.host_name !== undefined && link.veth !== device.host_name
        ? [`the veth of ${key} is ${link.veth}, not ${device.host_name}`]
        : []),
      ...(link.master !== device.parent
        ? [`the veth of ${key} is in ${link.master ?? "no bridge"}, not ${device.parent}`]
        : []),
    ];
  });
}

/** A numeric id names the container `ct{id}`; any other name is given as it is. */
function idOf(container: LiveContainer): Pick<LxcContainerSpec, "id" | "name"> {
  const id = container.id ?? container.name;
  const numeric = /^[0-9]{1,9}$/.test(id);
  const named = numeric ? `ct${id}` : id;
  return {
    id: numeric ? Number(id) : id,
    ...(named === container.name ? {} : { name: container.name }),
  };
}

/** The device keys each NIC form writes (nics/prepare.ts); any other key is not the file's. */
const nicKeys: Record<string, readonly string[]> = {
  bridged: ["type", "nictype", "parent", "host_name", "name", "mtu", "hwaddr", "vlan"],
  macvlan: ["type", "nictype", "parent", "name", "mtu", "hwaddr", "vlan"],
  network: ["type", "network", "name", "mtu", "hwaddr"],
};

function exportDevices(
  devices: Devices,
  note: (what: string) => void,
): Pick<LxcContainerSpec, "nics" | "bridge" | "veth" | "mounts" | "volumes"> {
  const nics: Nic[] = [];
  const mounts: LxcMount[] = [];
  const volumes: VolumeAttachment[] = [];
  for (const [key, device] of Object.entries(devices)) {
    if (device.type === "disk" && device.path === "/" && device.pool !== undefined) continue;
    const nic = device.type === "nic" ? nicOf(key, device) : undefined;
    const mount = device.type === "disk" ? mountOf(key, device) : undefined;
    const volume = device.type === "disk" ? volumeOf(key, device) : undefined;
    if (nic !== undefined) nics.push(nic);
    else if (mount !== undefined) mounts.push(mount);
    else if (volume !== undefined) volumes.push(volume);
    else {
      note(
        `device ${key} (${[device.type, device.nictype].filter(Boolean).join(" ")}) is not in op's format; left out, so applying the file removes it`,
      );
    }
  }
  const only = nics.length === 1 ? nics[0] : undefined;
  // The shorthand when it says all: one bridged eth0 with nothing else.
  const shorthand =
    only?.type === "bridged" &&
    only.name === nicDevice &&
    Object.keys(only).every((k) => ["name", "type", "bridge", "host_name"].includes(k));
  return {
    ...(shorthand && only?.bridge !== undefined
      ? { bridge: only.bridge, ...(only.host_name === undefined ? {} : { veth: only.host_name }) }
      : nics.length > 0
        ? { nics }
        : {}),
    ...(mounts.length > 0 ? { mounts } : {}),
    ...(volumes.length > 0 ? { volumes } : {}),
  };
}

function nicOf(key: string, device: Record<string, string>): Nic | undefined {
  const type = device.network !== undefined ? "network" : device.nictype;
  if (type === undefined || !(type in nicKeys)) return undefined;
  // The file's NIC is keyed by its name: a device of another key cannot be written.
  if (device.name !== key) return undefined;
  if (Object.keys(device).some((k) => !nicKeys[type]?.includes(k))) return undefined;
  const number = (value: string | undefined) =>
    value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : undefined;
  const mtu = number(device.mtu);
  const vlan = number(device.vlan);
  if (
    (device.mtu !== undefined && mtu === undefined) ||
    (device.vlan !== undefined && vlan === undefined)
  )
    return undefined;
  return {
    name: key,
    type: type as Nic["type"],
    ...(type === "bridged" ? { bridge: device.parent as string, host_name: device.host_name } : {}),
    ...(type === "macvlan" ? { parent: device.parent as string } : {}),
    ...(type === "network" ? { network: device.network as string } : {}),
    ...(mtu === undefined ? {} : { mtu }),
    ...(device.hwaddr === undefined ? {} : { hwaddr: device.hwaddr }),
    ...(vlan === undefined ? {} : { vlan }),
  } as Nic;
}

/** A host directory as prepare writes it: device `mnt` + its path, with `-` for the rest. */
function mountOf(key: string, device: Record<string, string>): LxcMount | undefined {
  const { source, path } = device;
  if (source === undefined || path === undefined || device.pool !== undefined) return undefined;
  if (key !== `mnt${path.replace(/[^A-Za-z0-9]+/g, "-").replace(/-$/, "")}`) return undefined;
  const allowed = ["type", "source", "path", "readonly", "shift"];
  if (Object.keys(device).some((k) => !allowed.includes(k))) return undefined;
  if (device.readonly !== undefined && device.readonly !== "true") return undefined;
  if (device.shift !== undefined && device.shift !== "true") return undefined;
  return {
    source,
    path,
    ...(device.readonly === "true" ? { readonly: true } : {}),
    ...(device.shift === "true" ? { shift: true } : {}),
  };
}

/** A custom volume as prepare attaches it: device `vol-NAME`. */
function volumeOf(key: string, device: Record<string, string>): VolumeAttachment | undefined {
  const { pool, source, path } = device;
  if (pool === undefined || source === undefined || path === undefined) return undefined;
  if (key !== `vol-${source}`) return undefined;
  const allowed = ["type", "pool", "source", "path", "readonly"];
  if (Object.keys(device).some((k) => !allowed.includes(k))) return undefined;
  if (device.readonly !== undefined && device.readonly !== "true") return undefined;
  return {
    volume: source,
    pool,
    path,
    ...(device.readonly === "true" ? { readonly: true } : {}),
  };
}
