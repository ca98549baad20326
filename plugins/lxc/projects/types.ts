/** Incus projects as op reads them and as the file declares them (plugins/lxc/projects/). */
import type { Holding } from "../holding.js";
import type { LiveFields } from "../objects.js";

/** `usedBy` is what the project holds (`/1.0/instances/ct1?project=p`). */
export interface LiveProject extends LiveFields {
  name: string;
}

export interface DesiredProject {
  name: string;
  /** JSON path of the entry in the file, for messages. */
  path: string;
  /** The entry says `adopt: true`: op may change it although it did not create it. */
  adopt: boolean;
  holding: Holding;
  /** Undefined: left as it is (an adopted project whose entry gives none). */
  description?: string;
  /** Owned: the whole config (Incus's feature defaults and op's tag included); adopted: the file's keys. */
  config: Record<string, string>;
}

/** A project the file says is `ensure: absent`. */
export interface AbsentProject {
  name: string;
  path: string;
  /** The entry says `adopt: true`: op may delete it although it did not create it. */
  adopt: boolean;
}

export interface DesiredProjects {
  present: DesiredProject[];
  absent: AbsentProject[];
}

/** What a project's delete carries: the live project and where the file (or prune) asks for it. */
export interface ProjectDelete {
  project: LiveProject;
  path: string;
}
