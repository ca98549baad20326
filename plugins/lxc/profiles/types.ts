/** Incus profiles as op reads them and as the file declares them (plugins/lxc/profiles/). */
import type { Holding } from "../holding.js";
import type { LiveObject } from "../objects.js";
import type { Devices } from "../types.js";

export interface LiveProfile extends LiveObject {
  name: string;
  devices: Devices;
}

export interface DesiredProfile {
  name: string;
  project: string;
  /** JSON path of the entry in the file, for messages. */
  path: string;
  /** The entry says `adopt: true`: op may change it although it did not create it. */
  adopt: boolean;
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
  /** The entry says `adopt: true`: op may delete it although it did not create it. */
  adopt: boolean;
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
