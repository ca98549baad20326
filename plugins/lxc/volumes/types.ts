/** Custom storage volumes: what the file asks for and what the host has. */
export type { LxcVolumeAttachment, LxcVolumeSpec } from "../../../src/generated/lxc.js";

/** The pool a container's volume is in when the attachment names none. */
export const defaultPool = "default";

export type ContentType = "filesystem" | "block";

export interface DesiredVolume {
  pool: string;
  name: string;
  project: string;
  /** JSON path of the entry, for messages. */
  path: string;
  ensure: "present" | "absent";
  adopt: boolean;
  contentType: ContentType;
  description?: string;
  /** The keys the file gives (`size` included; the ownership tag when op creates it). */
  config: Record<string, string>;
}

export interface LiveVolume {
  pool: string;
  name: string;
  project: string;
  contentType: string;
  owned: boolean;
  description: string;
  config: Record<string, string>;
  volatile: Record<string, string>;
  usedBy: string[];
  /**
   * Listed by a client bound to one project but another project's (a project without its own
   * lists the default project's; plugins/lxc/objects.ts asListed): visible, never deleted.
   */
  inherited?: true;
}

export interface LivePool {
  name: string;
  driver: string;
}

/** A volume as a container attaches it (its disk device `vol-NAME`). */
export interface AttachedVolume {
  pool: string;
  volume: string;
  /** JSON path of the attachment, for messages. */
  path: string;
}
