/**
 * The lxc plugin: containers on Incus, created from image aliases (imported from
 * tarballs when asked), with limits, raw config, profiles, a host-side veth enrolled in a
 * Linux or Open vSwitch bridge, and host-directory mounts. Accepts op-dbus files as they are.
 */

import { resolve } from "node:path";
import { resolvePaths } from "../../src/context.js";
import {
  type Ctx,
  type LiveReport,
  liveLater,
  type Plugin,
  problemOf,
  type Settings,
} from "../../src/plugin.js";
import { declaredLinks } from "../network/declared.js";
import { applyLxc } from "./apply.js";
import { checkLxc } from "./check.js";
import { diffLxc } from "./diff.js";
import { exportLxc } from "./export.js";
import { ovsBridges, readOvs } from "./host.js";
import { lxcIgnore } from "./ignore.js";
import { reportImages } from "./images/report.js";
import { execInInstance } from "./instance/exec.js";
import { pullFiles, pushFiles } from "./instance/files.js";
import { reportNetworks } from "./networks/report.js";
import { opDefaultDirectories } from "./paths.js";
import { lxcImage, lxcScope } from "./preimage.js";
import { prepareLxc } from "./prepare.js";
import { guardProfiles } from "./profiles/guard.js";
import { reportProfiles } from "./profiles/report.js";
import { guardProjects } from "./projects/guard.js";
import { reportProjects } from "./projects/report.js";
import { lxcInventory } from "./provision/inventory.js";
import { queryLxc } from "./query.js";
import { containerId } from "./refs.js";
import { guardRemote } from "./remote.js";
import type {
  BridgeKind,
  LiveContainer,
  LxcDesired,
  LxcKinds,
  LxcLive,
  LxcSection,
} from "./types.js";
import { nicDevice, plugin } from "./types.js";
import { reportVolumes } from "./volumes/report.js";

export type { LxcDesired, LxcLive } from "./types.js";

/** The file's half, started: it gets the live state when the host has answered. */
type LxcNormalised = ReturnType<typeof liveLater<LxcLive, LxcDesired>>;

/** The containers' table, then one per other kind the host has. */
export function reportLxc(live: LxcLive): LiveReport[] {
  return [
    reportContainers(live),
    reportNetworks(live.networks ?? []),
    reportVolumes(live.volumes ?? []),
    reportImages(live.images ?? []),
    reportProjects(live.projects ?? []),
    reportProfiles(live.profiles ?? []),
  ];
}

/**
 * One row per container: name (PROJECT/NAME outside the default project), op id, status,
 * image, veth, bridge, addresses, limits. Incus's own volatile keys are not shown.
 */
export function reportContainers(live: LxcLive): LiveReport {
  return {
    columns: [
      "name",
      "id",
      "status",
      "image",
      "veth",
      "bridge",
      "addresses",
      "cpu",
      "memory",
      "op",
    ],
    rows: live.containers.map((container) => {
      const nic = container.devices[nicDevice];
      return [
        containerId(container.project, container.name),
        container.id ?? "-",
        container.status,
        container.image ?? container.put.volatile["image.description"] ?? "-",
        container.veth ?? nic?.host_name ?? "-",
        container.master ?? nic?.parent ?? "-",
        container.addresses.join(" ") || "-",
        container.config["limits.cpu"] ?? "-",
        container.config["limits.memory"] ?? "-",
        container.managed ? "yes" : "no",
      ];
    }),
  };
}

/** The incus client's remotes, for `REMOTE:ALIAS` images (read only when a file names one). */
async function remotesOf(ctx: Ctx): Promise<Record<string, { server: string; protocol: string }>> {
  const out = await ctx.exec.run("incus", ["remote", "list", "--format", "json"]);
  const remotes = JSON.parse(out.stdout) as Record<string, { Addr?: string; Protocol?: string }>;
  return Object.fromEntries(
    Object.entries(remotes)
      .filter(([, remote]) => remote.Addr !== undefined && !remote.Addr.startsWith("unix:"))
      .map(([name, remote]) => [
        name,
        { server: remote.Addr as string, protocol: remote.Protocol ?? "simplestreams" },
      ]),
  );
}

/**
 * op's own directories and files as the settings give them (defaults, moved by OP_LEDGER and
 * the like). The key and the lock are files: their directories may be shared ones (/tmp).
 */
function opDirectories(settings: Settings): string[] {
  const paths = resolvePaths(settings);
  return [
    ...new Set(
      [
        ...opDefaultDirectories,
        paths.ledgerDir,
        paths.keyFile,
        `${paths.keyFile}.pub`,
        paths.lockFile,
        paths.cacheDir,
      ].map((path) => resolve(path)),
    ),
  ];
}

/**
 * `op query --json`: without `all`, the keys Incus sets for itself (`volatile.*`, `image.*`)
 * are left out; op hands them back unchanged when it updates a container.
 */
export function lxcQueryJson(live: LxcLive, options: { all: boolean }): unknown {
  if (options.all) return live;
  const withoutVolatile = <T extends { volatile: unknown }>({ volatile: _, ...kept }: T) => kept;
  return {
    ...live,
    ...(live.networks === undefined ? {} : { networks: live.networks.map(withoutVolatile) }),
    ...(live.volumes === undefined ? {} : { volumes: live.volumes.map(withoutVolatile) }),
    containers: live.containers.map((container: LiveContainer) => {
      const { put, ...rest } = container;
      const { volatile: _serverSet, ...kept } = put;
      return { ...rest, put: kept };
    }),
  };
}

export const lxcPlugin: Plugin<LxcDesired, LxcLive, LxcNormalised, LxcKinds> = {
  name: plugin,
  resources: {
    container: "an Incus system container",
    image: "an Incus image alias, imported from the file's tarballs (or removed)",
    project: "an Incus project",
    profile: "an Incus profile",
    network: "an Incus managed network (bridge)",
    volume: "an Incus custom storage volume",
  },
  check: (section, path, settings) => {
    const warnings: string[] = [];
    const problems = checkLxc(
      section,
      path,
      (line) => warnings.push(line),
      opDirectories(settings),
    );
    return { problems: problems.map(problemOf), warnings: warnings.map(problemOf) };
  },
  ignore: lxcIgnore,
  query: queryLxc,
  // prepareLxc hashes the file's image tarballs first, then awaits the live state.
  normalise: async (section, ctx, file) => {
    let remotes: ReturnType<typeof remotesOf> | undefined;
    let ovs: Promise<Record<string, BridgeKind>> | undefined;
    return liveLater((live: Promise<LxcLive>) =>
      prepareLxc(section as LxcSection, live, ctx, {
        opDirs: opDirectories(ctx.settings),
        declaredLinks: declaredLinks(file),
        ...(ctx.settings.defaultImage === undefined
          ? {}
          : { defaultImage: ctx.settings.defaultImage }),
        remotes: () => {
          remotes ??= remotesOf(ctx);
          return remotes;
        },
        ovsBridges: () => {
          ovs ??= readOvs(ctx.host.ovs).then(ovsBridges);
          return ovs;
        },
      }),
    );
  },
  resolve: (started, live) => started.resolve(live),
  diff: diffLxc,
  // Deletes Incus would refuse halfway through the run (the objects are still in use).
  guard: (actions, live) => [
    ...guardProfiles(actions),
    ...guardProjects(actions),
    ...guardRemote(actions, live),
  ],
  apply: applyLxc,
  report: reportLxc,
  queryJson: lxcQueryJson,
  inventory: lxcInventory,
  instances: { exec: execInInstance, push: pushFiles, pull: pullFiles },
  exportSection: exportLxc,
  imageScope: lxcScope,
  image: lxcImage,
};
