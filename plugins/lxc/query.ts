/**
 * Bulk read: one `GET /1.0/instances?recursion=1` (config, devices and status of every
 * instance) and one alias listing. The number of calls does not grow with the number of
 * containers; what the listing lacks (the host veth as the kernel names it now, its bridge,
 * addresses) comes from small sysfs and /proc reads, and OVSDB is read once, only when a
 * running container's veth is in no Linux bridge (it may be an OVS port).
 */

import { OpError } from "../../src/errors.js";
import type { Sys } from "../../src/host/sys.js";
import type { IncusClient } from "../../src/incus.js";
import { byName } from "../../src/order.js";
import type { Ctx } from "../../src/plugin.js";
import {
  containerAddresses,
  containerLinkUp,
  linuxBridges,
  ovsBridges,
  peerIndex,
  readOvs,
} from "./host.js";
import { queryProfiles } from "./profiles/query.js";
import { queryProjects } from "./projects/query.js";
import { defaultProject } from "./refs.js";
import { type Devices, type LiveContainer, type LxcLive, nicDevice, tags } from "./types.js";

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
}

export function incusOf(ctx: Ctx): IncusClient {
  if (ctx.incus === undefined) {
    throw new OpError("daemon-unavailable", "this run has no Incus client", {
      hint: "the lxc plugin needs ctx.incus (createCtx gives one)",
    });
  }
  return ctx.incus;
}

export async function queryLxc(ctx: Ctx): Promise<LxcLive> {
  const incus = incusOf(ctx);
  const [instances, aliases, projects, profiles] = await Promise.all([
    incus.request<IncusInstance[]>("GET", "/1.0/instances?recursion=1", undefined, {
      what: "listing containers",
    }),
    incus.request<{ name: string; target: string }[]>(
      "GET",
      "/1.0/images/aliases?recursion=1",
      undefined,
      {
        what: "listing image aliases",
      },
    ),
    queryProjects(incus),
    queryProfiles(incus),
  ]);
  const containers = instances
    .filter((instance) => instance.type === "container")
    .map((instance) => liveContainer(instance, ctx.host.sys))
    .sort(byName);
  const bridges = linuxBridges(ctx.host.sys);
  const maybeOvs = containers.filter(
    (c) => c.veth !== undefined && (c.master === undefined || c.master === "ovs-system"),
  );
  if (maybeOvs.length > 0) {
    const ovs = await readOvs(ctx.host.ovs);
    Object.assign(bridges, ovsBridges(ovs));
    for (const container of maybeOvs) {
      const bridge = ovs.portBridge.get(container.veth as string);
      if (bridge === undefined) delete container.master;
      else container.master = bridge;
    }
  }
  const otherMounts = instances
    .filter((instance) => instance.type !== "container")
    .flatMap((instance) =>
      Object.values(instance.devices ?? {})
        .filter((device) => device.type === "disk" && device.source?.startsWith("/"))
        .map((device) => ({ instance: instance.name, source: device.source as string })),
    );
  return {
    containers,
    bridges,
    aliases: Object.fromEntries(aliases.map((alias) => [alias.name, alias.target])),
    ...(otherMounts.length > 0 ? { otherMounts } : {}),
    projects,
    profiles,
  };
}

/** A container as Incus lists it, with what the host's files say of its link (`sys`). */
export function liveContainer(instance: IncusInstance, sys: Sys): LiveContainer {
  const config: Record<string, string> = {};
  const volatile: Record<string, string> = {};
  for (const [key, value] of Object.entries(instance.config ?? {})) {
    if (key.startsWith("volatile.") || key.startsWith("image.")) volatile[key] = value;
    else config[key] = value;
  }
  const devices = instance.devices ?? {};
  const status = instance.status.toLowerCase();
  const live: LiveContainer = {
    name: instance.name,
    project: instance.project ?? defaultProject,
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
  if (config[tags.id] !== undefined) live.id = config[tags.id];
  if (config[tags.image] !== undefined) live.image = config[tags.image];
  if (status === "running") {
    const ifname = devices[nicDevice]?.name ?? nicDevice;
    // The host end is where Incus put it, unless renamed by hand since: then its index is
    // read from inside the container (only for such a container) and looked up here.
    const recorded = sys.link(volatile[`volatile.${nicDevice}.host_name`] ?? "");
    const index = recorded === undefined ? peerIndex(sys, instance.name, ifname) : undefined;
    const renamed = index === undefined ? undefined : sys.linkNameByIndex(index);
    // Addresses are read when something looks at them (op query), not for a plan.
    Object.defineProperty(live, "addresses", {
      enumerable: true,
      configurable: true,
      get: () => {
        const addresses = containerAddresses(sys, instance.name);
        Object.defineProperty(live, "addresses", {
          value: addresses,
          enumerable: true,
          writable: true,
        });
        return addresses;
      },
    });
    if (devices[nicDevice]?.type === "nic") {
      const up = containerLinkUp(sys, instance.name, ifname);
      if (up !== undefined) live.nicUp = up;
    }
    const link = recorded ?? (renamed === undefined ? undefined : sys.link(renamed));
    if (link !== undefined) {
      live.veth = link.name;
      if (link.master !== undefined) live.master = link.master;
    }
  }
  return live;
}
