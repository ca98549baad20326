/** Incus profiles as op reads them and as the file declares them (plugins/lxc/profiles/). */
import type { Holding } from "../holding.js";
import type { Devices } from "../types.js";

export interface LiveProfile {
  name: string;
  project: string;
  description: string;
  config: Record<string, string>;
  devices: Devices;
  /** The instances using it, as Incus lists them (`/1.0/instances/ct1?project=p`). */
  usedBy: string[];
  /** Tagged `user.op.managed=true`: op created it. */
  managed: boolean;
  /**
   * Listed by a client bound to one project but another project's (a project without its own
   * lists the default project's; plugins/lxc/objects.ts asListed): visible, never deleted.
   */
  inherited?: true;
}

export interface DesiredProfile {
  name: string;
  project: string;
  /** JSON path of the entry in the file, for messages. */
  path: string;
  holding: Holding;
  /** Undefined: left as it is (an adopted profile whose entry gives none). */
  description?: string;
  /** Owned: the whole config (op's tag included); adopted: the file's keys. */
  config: Record<string, string>;
  /** Owned: every device; adopted: the file's devices. */
  devices: Devices;
}

/** A profile the file says is `ensure: absent`. */
export interface AbsentProfile {
  name: string;
  project: string;
  path: string;
}

export interface DesiredProfiles {
  present: DesiredProfile[];
  absent: AbsentProfile[];
}

/** What a profile's delete carries: the live profile and where the file (or prune) asks for it. */
export interface ProfileDelete {
  profile: LiveProfile;
  path: string;
}
