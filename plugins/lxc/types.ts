/**
 * The models `diff` compares. Live comes from one Incus listing plus host reads (links, OVS
 * ports, /proc); desired is the file's section after normalisation (prepare.ts), in the same
 * shape: Incus config keys and device maps, so comparing them is plain equality.
 */
export type {
  LxcContainerSpec,
  LxcImageSpec,
  LxcMount,
  LxcSection,
} from "../../src/generated/lxc.js";

import type { LxcSection } from "../../src/generated/lxc.js";
import type { Action, Kind } from "../../src/plugin.js";
import type { DesiredSnapshots } from "./containers/snapshots.js";
import type { DesiredFile, LiveFile } from "./files/types.js";
import type { DesiredTarballImage } from "./images/tarball-prepare.js";
import type { DesiredAbsentImage, ImageDelete, LiveImage } from "./images/types.js";
import type { DesiredNetwork, LiveNetwork } from "./networks/types.js";
import type { NetworkAttachment } from "./nics/prepare.js";
import type {
  DesiredProfile,
  DesiredProfiles,
  LiveProfile,
  ProfileDelete,
} from "./profiles/types.js";
import type {
  DesiredProject,
  DesiredProjects,
  LiveProject,
  ProjectDelete,
} from "./projects/types.js";
import type { MountOwner } from "./provision/mounts.js";
import type { DesiredProvision } from "./provision/prepare.js";
import type { AttachedVolume, DesiredVolume, LivePool, LiveVolume } from "./volumes/types.js";

export const plugin = "lxc";

/** Config keys op writes on every container it manages. */
export const tags = {
  managed: "user.op.managed",
  id: "user.op.id",
  image: "user.op.image",
  /** The resolv.conf op wrote (nameserver/searchdomain), to notice when the file changes it. */
  dns: "user.op.dns",
  /** The named snapshots the file declares (containers/snapshots.ts): only these are read. */
  snapshots: "user.op.snapshots",
  /** The paths of the files the file declares (files/): only these are read. */
  files: "user.op.files",
  /** The backup a container was restored from (`backup`): restored once, not again. */
  backup: "user.op.backup",
} as const;

/** The NIC op gives a container with a bridge; profile NICs of the same name are overridden. */
export const nicDevice = "eth0";

export type Devices = Record<string, Record<string, string>>;

export type BridgeKind = "linux" | "ovs";

export interface LiveContainer {
  name: string;
  /** The Incus project it is in (`default` unless the file says otherwise). */
  project: string;
  /** Tagged `user.op.managed=true`: op created it. */
  managed: boolean;
  /** `user.op.id`. */
  id?: string;
  /** Incus status in lower case: running, stopped, frozen, error... */
  status: string;
  /** `user.op.image`: the image string the file gave when op created it. */
  image?: string;
  profiles: string[];
  /** Local config without Incus's own `volatile.*` and `image.*` keys. */
  config: Record<string, string>;
  /** Local devices (profile devices are not op's). */
  devices: Devices;
  /** Kept for a full PUT of the instance (Incus replaces what a PUT leaves out). */
  put: {
    architecture: string;
    ephemeral: boolean;
    stateful: boolean;
    description: string;
    volatile: Record<string, string>;
  };
  /** The cluster member it is on; absent when Incus is not a cluster. Observed, never drift. */
  location?: string;
  /** Running only: the host-side end of its `eth0`, as the kernel names it now. */
  veth?: string;
  /** Running only: the bridge that link is enrolled in now (Linux master or OVS bridge). */
  master?: string;
  /** Running only: the same for its other bridged NICs, by device name (nics/query.ts). */
  nicLinks?: Record<string, { veth: string; master?: string }>;
  /** Running only: its global addresses (read from the host, no call per container). */
  addresses: string[];
  /** Running with a NIC of its own: whether that interface is up inside the container. */
  nicUp?: boolean;
  /** Owners of the host directories its disks mount, read when looked at (provision/mounts.ts). */
  owners?: Record<string, { uid: number; gid: number }>;
  /** Names of its snapshots, read only when it carries `user.op.snapshots`. */
  snapshots?: string[];
  /** The declared files its `user.op.files` lists, by path; null: missing (files/query.ts). */
  files?: Record<string, LiveFile | null>;
}

export interface LxcLive {
  /** Set when the section's Incus is remote (plugins.lxc.remote): its URLs. */
  remote?: string;
  /**
   * The section's `remote` as the query used it: a pre-image or an export of these objects
   * must name it too, or an undo would be applied to the local Incus.
   */
  remoteSpec?: LxcSection["remote"];
  containers: LiveContainer[];
  /** Bridges on the host, by name. */
  bridges: Record<string, BridgeKind>;
  /** Local image aliases → fingerprint. */
  aliases: Record<string, string>;
  /** The local image store, with which instances use each image (images/query.ts). */
  images?: LiveImage[];
  /** Host directories mounted by instances that are not containers (VMs): never removed. */
  otherMounts?: { instance: string; source: string }[];
  /** Incus managed networks of every project (plugins/lxc/networks/). */
  networks?: LiveNetwork[];
  /** Storage pools, and the custom volumes in them (plugins/lxc/volumes/). */
  pools?: LivePool[];
  volumes?: LiveVolume[];
  /** Incus projects (plugins/lxc/projects/); absent in fixtures recorded before them. */
  projects?: LiveProject[];
  /** Profiles of every project (plugins/lxc/profiles/); absent in fixtures recorded before them. */
  profiles?: LiveProfile[];
}

/** A bridged NIC: its host veth op renames back and re-enrols when it drifts. */
export interface DesiredNic {
  /** Its Incus device (and interface) name; `eth0` for the shorthand fields. */
  device: string;
  bridge: string;
  veth: string;
  /** What the bridge is now; absent when it does not exist (yet). */
  kind?: BridgeKind;
  /** The VLAN tag (Incus's `vlan` key): kept when op re-adds the veth to an OVS bridge. */
  vlan?: number;
}

export interface DesiredMount {
  device: string;
  /** Resolved against the state file's directory. */
  source: string;
  path: string;
  preserve: boolean;
  readonly: boolean;
  allowHostPath: boolean;
  /** `uid`/`gid`: the owner op gives the host directory (provision/mounts.ts). */
  owner?: MountOwner;
}

/** Where a pulled image comes from (`REMOTE:ALIAS`), resolved from the incus client's remotes. */
export interface RemoteSource {
  server: string;
  protocol: string;
  alias: string;
}

export interface DesiredContainer {
  name: string;
  /** The Incus project it is in (`default` unless the file says otherwise). */
  project: string;
  id: string;
  /** JSON path of the entry in the file, for messages. */
  path: string;
  /** The entry says `adopt: true`: op may take the container over if it did not create it. */
  adopt?: true;
  image: string;
  /** Set when `image` is `REMOTE:ALIAS` of a remote the incus client knows. */
  remote?: RemoteSource;
  running: boolean;
  profiles: string[];
  /** The complete local config op wants (tags included). */
  config: Record<string, string>;
  /** The complete local devices op wants. */
  devices: Devices;
  /** Its bridged NICs (the shorthand's `eth0`, or `nics` entries of type bridged). */
  nics?: DesiredNic[];
  mounts: DesiredMount[];
  stopTimeout: number;
  /** resolv.conf content op writes, when nameserver or searchdomain is given. */
  resolvConf?: string;
  /** The instance's description; undefined: left as it is. */
  description?: string;
  /** Whether Incus deletes it when it stops; undefined: left as it is. */
  ephemeral?: boolean;
  /** Named snapshots op keeps (`snapshots.keep`, `snapshots.prune`). */
  snapshots?: DesiredSnapshots;
  /** A change Incus takes only at start may restart it (`restart: allowed`, --allow-restart). */
  restartAllowed: boolean;
  /** The managed networks its NICs are attached to (`network`, or `nics` of type network). */
  networks?: NetworkAttachment[];
  /** The custom volumes attached to it (`volumes`). */
  attached?: AttachedVolume[];
  /** cloud-init, `wait`, inventory fields (provision/prepare.ts); absent when none is given. */
  provision?: DesiredProvision;
  /** Declared files (`files`, files/); absent when none is given. */
  files?: DesiredFile[];
  /** `rollback: snapshot`: a delete or replace of it keeps a backup first (preimage.ts). */
  rollbackSnapshot?: true;
  /** `backup`: the SHA-256 of the backup in op's image store it is imported from. */
  backup?: string;
  /** The cluster member or `@group` it is created on (containers/placement.ts). */
  target?: string;
  /** `allow_move: true`: op moves it to its `target` member when it is on another. */
  allowMove?: true;
}

/** A host directory op removes after deleting the container that mounted it. */
export interface DirectoryRemoval {
  /** Its realpath, checked against the container's live mounts and the host's own dirs. */
  path: string;
  /** What it holds (regular files' sizes), for the plan. */
  bytes: number;
}

export interface DesiredAbsent {
  name: string;
  project: string;
  path: string;
  /** The entry says `adopt: true`: op may delete the container although it did not create it. */
  adopt?: true;
  /** The file also turns delete protection off, so op may lift it before deleting. */
  unprotect: boolean;
  stopTimeout: number;
  /** Directories of `preserve: false` mounts the live container mounts, removed after it. */
  removeSources: DirectoryRemoval[];
  /** `rollback: snapshot`: a backup is kept before the delete (preimage.ts). */
  rollbackSnapshot?: true;
}

/** An image to import: a split image's two tarballs, or a system tarball op adapts. */
export type DesiredImage = DesiredSplitImage | DesiredTarballImage;

export interface DesiredSplitImage {
  alias: string;
  path: string;
  metadata: string;
  rootfs: string;
  /** SHA-256 of metadata then rootfs: the fingerprint Incus gives the imported image. */
  fingerprint: string;
}

export interface LxcDesired {
  prune: boolean;
  images: DesiredImage[];
  containers: DesiredContainer[];
  absent: DesiredAbsent[];
  networks?: DesiredNetwork[];
  volumes?: DesiredVolume[];
  /** `prune_images`: images op imported that nothing keeps are deleted. */
  pruneImages?: boolean;
  /** `images[]` entries with `ensure: absent`. */
  absentImages?: DesiredAbsentImage[];
  projects?: DesiredProjects;
  profiles?: DesiredProfiles;
}

/** What a container's delete carries (the action's `before`). */
export interface ContainerDelete {
  container: LiveContainer;
  unprotect: boolean;
  stopTimeout: number;
  removeSources: DirectoryRemoval[];
  /** The entry says `rollback: snapshot`: the run's pre-image keeps a backup of it first. */
  snapshot?: true;
}

/** An image alias as the host has it: what a re-import replaces. */
export interface LiveImageAlias {
  alias: string;
  fingerprint: string;
}

/**
 * The lxc plugin's resource kinds (src/plugin.ts): a container (id: its name) and an image
 * alias (id: `image ALIAS`, which no container name can be; refs.ts). An image delete removes
 * the alias, or the image with its aliases (images/).
 */
export type LxcKinds = {
  container: Kind<DesiredContainer, LiveContainer, DesiredContainer, ContainerDelete>;
  image: Kind<DesiredImage, LiveImageAlias, DesiredImage, ImageDelete>;
  network: Kind<DesiredNetwork, LiveNetwork>;
  volume: Kind<DesiredVolume, LiveVolume>;
  project: Kind<DesiredProject, LiveProject, DesiredProject, ProjectDelete>;
  profile: Kind<DesiredProfile, LiveProfile, DesiredProfile, ProfileDelete>;
};

/** An action of the lxc plugin. */
export type LxcAction = Action<LxcKinds>;
