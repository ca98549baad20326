/**
 * Bulk read: one `GET /1.0/instances?recursion=1&all-projects=true` (config, devices and
 * status of every instance in every project), one image listing (aliases and properties
 * included; images/query.ts), the managed networks
 * (networks/query.ts), and the storage pools with one listing of custom volumes per pool
 * (volumes/query.ts). The number of calls does not grow with the number of containers,
 * networks or volumes; what the listing lacks (the host veth as the kernel names it now, its bridge,
 * addresses) comes from small sysfs and /proc reads, and OVSDB is read once, only when a
 * running container's veth is in no Linux bridge (it may be an OVS port).
 */

import type { Sys } from "../../src/host/sys.js";
import type { IncusClient } from "../../src/incus.js";
import { byName } from "../../src/order.js";
import type { Ctx } from "../../src/plugin.js";
import { snapshotNames } from "./containers/snapshots.js";
import { readDeclaredFiles } from "./files/query.js";
import {
  containerAddresses,
  containerLinkUp,
  hostName,
  linuxBridges,
  ovsBridges,
  readOvs,
} from "./host.js";
import { aliasTargets, type IncusImage, liveImages } from "./images/query.js";
import { queryNetworks } from "./networks/query.js";
import { hostEnd, maybeOvsLinks, otherNicLinks } from "./nics/query.js";
import { queryProfiles } from "./profiles/query.js";
import { queryProjects } from "./projects/query.js";
import { defineOwners } from "./provision/mounts.js";
import { defaultProject, inProject } from "./refs.js";
import { bindIncus } from "./remote.js";
import {
  type Devices,
  type LiveContainer,
  type LxcLive,
  type LxcSection,
  nicDevice,
  tags,
} from "./types.js";
import { queryVolumes } from "./volumes/query.js";

interface IncusInstance {
  name: string;
  /** Absent in listings of one project. */
  project?: string;
  type: string;
  status: string;
  architecture: string;
  ephemeral: boolean;
  stateful: boolean;
  description: string;
  profiles: string[] | null;
  config: Record<string, string> | null;
  devices: Devices | null;
  /** The cluster member it is on (`none` on an Incus that is not a cluster). */
  location?: string;
  /** With recursion=2 (a remote's listing): its state, network included. */
  state?: { network?: Record<string, InstanceNic> | null } | null;
}

/** One interface of a running instance, as Incus's state reports it. */
interface InstanceNic {
  host_name?: string;
  state?: string;
  addresses?: { family: string; address: string; scope: string }[];
}

export { incusOf } from "./remote.js";

export async function queryLxc(ctx: Ctx, section?: unknown): Promise<LxcLive> {
  const incus = bindIncus(ctx, section);
  // A remote's containers are on another host: their links and addresses come from Incus's
  // own state of each (recursion=2, still one call), none from this host's /proc and sysfs.
  const remote = incus.remote !== undefined;
  const recursion = remote ? 2 : 1;
  // A client made for one project (the system tests' isolation) sees that project as the
  // whole host: it is listed alone and is the file's `default` (every call is scoped to it).
  const listing =
    incus.project === undefined
      ? `/1.0/instances?recursion=${recursion}&all-projects=true`
      : `/1.0/instances?recursion=${recursion}`;
  const [listed, imageList, networks, storage, projects, profiles] = await Promise.all([
    incus.request<IncusInstance[]>("GET", listing, undefined, { what: "listing containers" }),
    incus.request<IncusImage[]>("GET", "/1.0/images?recursion=1", undefined, {
      what: "listing images",
    }),
    queryNetworks(incus),
    queryVolumes(incus),
    queryProjects(incus),
    queryProfiles(incus),
  ]);
  const instances =
    incus.project === undefined
      ? listed
      : listed.map((instance) => ({ ...instance, project: defaultProject }));
  const containers = instances
    .filter((instance) => instance.type === "container")
    .map((instance) =>
      remote
        ? remoteContainer(instance, incus.project)
        : liveContainer(instance, ctx.host.sys, incus.project),
    )
    .sort((a, b) => byName(a, b) || byName({ name: a.project }, { name: b.project }));
  await Promise.all([readSnapshots(incus, containers), readDeclaredFiles(incus, containers)]);
  const bridges = remote ? {} : linuxBridges(ctx.host.sys);
  const maybeOvs = remote ? [] : containers.flatMap(maybeOvsLinks);
  if (maybeOvs.length > 0) {
    const ovs = await readOvs(ctx.host.ovs);
    Object.assign(bridges, ovsBridges(ovs));
    for (const link of maybeOvs) {
      const bridge = ovs.portBridge.get(link.veth);
      if (bridge === undefined) delete link.master;
      else link.master = bridge;
    }
  }
  const otherMounts = instances
    .filter((instance) => instance.type !== "container")
    .flatMap((instance) =>
      Object.values(instance.devices ?? {})
        .filter((device) => device.type === "disk" && device.source?.startsWith("/"))
        .map((device) => ({ instance: instance.name, source: device.source as string })),
    );
  // Which images any instance of any project (VMs too) was created from.
  const images = liveImages(imageList, instances);
  return {
    ...(remote
      ? { remote: incus.socketPath, remoteSpec: (section as LxcSection | undefined)?.remote }
      : {}),
    containers,
    bridges,
    aliases: aliasTargets(images),
    images,
    ...(otherMounts.length > 0 ? { otherMounts } : {}),
    networks,
    ...storage,
    projects,
    profiles,
  };
}

/**
 * The snapshot names of the containers whose file declares named snapshots (their tag says
 * so): one call each, only for them (containers/snapshots.ts says why).
 */
async function readSnapshots(incus: IncusClient, containers: LiveContainer[]): Promise<void> {
  await Promise.all(
    containers
      .filter((container) => container.config[tags.snapshots] !== undefined)
      .map(async (container) => {
        const urls = await incus.request<string[]>(
          "GET",
          inProject(
            `/1.0/instances/${encodeURIComponent(container.name)}/snapshots`,
            container.project,
          ),
          undefined,
          { what: `listing the snapshots of ${container.name}` },
        );
        container.snapshots = snapshotNames(urls);
      }),
  );
}

/** A container as Incus lists it, with what the host's files say of its link (`sys`). */
export function liveContainer(
  instance: IncusInstance,
  sys: Sys,
  /** The project a client made for one project is bound to (its containers' `default`). */
  bound?: string,
): LiveContainer {
  const config: Record<string, string> = {};
  const volatile: Record<string, string> = {};
  for (const [key, value] of Object.entries(instance.config ?? {})) {
    if (key.startsWith("volatile.") || key.startsWith("image.")) volatile[key] = value;
    else config[key] = value;
  }
  const devices = instance.devices ?? {};
  const status = instance.status.toLowerCase();
  const project = instance.project ?? defaultProject;
  const onHost = hostName({ project, name: instance.name }, bound);
  const live: LiveContainer = {
    name: instance.name,
    project,
    managed: config[tags.managed] === "true",
    status,
    profiles: instance.profiles ?? [],
    config,
    devices,
    put: {
      architecture: instance.architecture,
      ephemeral: instance.ephemeral,
      stateful: instance.stateful,
      description: instance.description,
      volatile,
    },
    addresses: [],
  };
  defineOwners(live);
  if (config[tags.id] !== undefined) live.id = config[tags.id];
  if (config[tags.image] !== undefined) live.image = config[tags.image];
  if (instance.location !== undefined && instance.location !== "none")
    live.location = instance.location;
  if (status === "running") {
    const ifname = devices[nicDevice]?.name ?? nicDevice;
    // Addresses are read when something looks at them (op query), not for a plan.
    Object.defineProperty(live, "addresses", {
      enumerable: true,
      configurable: true,
      get: () => {
        const addresses = containerAddresses(sys, onHost);
        Object.defineProperty(live, "addresses", {
          value: addresses,
          enumerable: true,
          writable: true,
        });
        return addresses;
      },
    });
    if (devices[nicDevice]?.type === "nic") {
      const up = containerLinkUp(sys, onHost, ifname);
      if (up !== undefined) live.nicUp = up;
    }
    // The host end is where Incus put it, unless renamed by hand since: then its index is
    // read from inside the container (only for such a container) and looked up here.
    const link =
      devices[nicDevice]?.nictype === "macvlan"
        ? undefined
        : hostEnd(sys, onHost, nicDevice, devices, volatile);
    if (link !== undefined) {
      live.veth = link.name;
      if (link.master !== undefined) live.master = link.master;
    }
    const others = otherNicLinks(sys, onHost, devices, volatile);
    if (others !== undefined) live.nicLinks = others;
  }
  return live;
}

/** This host has nothing of a remote's containers: every read of it finds nothing. */
export const elsewhere: Sys = {
  root: "/",
  text: () => undefined,
  exists: () => false,
  list: () => [],
  link: () => undefined,
  linkNameByIndex: () => undefined,
  linuxBridges: () => [],
  containerPid: () => undefined,
  procText: () => "",
  netnsOfProcess: () => undefined,
  namedNetns: () => undefined,
};

/**
 * A container of a remote Incus: its host veths as Incus names them (`host_name` in its
 * state), each bridged NIC's bridge as its device says (`parent`: Incus enrols it at start;
 * whether it has left it since cannot be seen from here), its addresses and whether its own
 * `eth0` is up, from the same state.
 */
export function remoteContainer(instance: IncusInstance, bound?: string): LiveContainer {
  const live = liveContainer(instance, elsewhere, bound);
  const network = instance.state?.network ?? {};
  const links: NonNullable<LiveContainer["nicLinks"]> = {};
  for (const [device, config] of Object.entries(live.devices)) {
    const nic = network[config.name ?? device];
    if (config.type !== "nic" || nic?.host_name === undefined || nic.host_name === "") continue;
    const link = {
      veth: nic.host_name,
      ...(config.parent === undefined ? {} : { master: config.parent }),
    };
    if (device === nicDevice) {
      live.veth = link.veth;
      if (link.master !== undefined) live.master = link.master;
      live.nicUp = nic.state === "up";
    } else links[device] = link;
  }
  if (Object.keys(links).length > 0) live.nicLinks = links;
  const addresses = Object.entries(network)
    .filter(([name]) => name !== "lo")
    .flatMap(([, nic]) => nic.addresses ?? [])
    .filter((address) => address.scope === "global")
    .map((address) => address.address);
  Object.defineProperty(live, "addresses", { value: addresses, enumerable: true, writable: true });
  return live;
}
