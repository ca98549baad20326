/** Custom storage volumes: what the file asks for and what the host has. */
export type { LxcVolumeAttachment, LxcVolumeSpec } from "../../../src/generated/lxc.js";

import type { LiveObject } from "../objects.js";

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
  /** The entry says `adopt: true`: op may change or delete it although it did not create it. */
  adopt: boolean;
  contentType: ContentType;
  description?: string;
  /** The keys the file gives (`size` included) and op's ownership tag (left out of a change to one op did not create). */
  config: Record<string, string>;
}

export interface LiveVolume extends LiveObject {
  pool: string;
  name: string;
  contentType: string;
  /** Incus's own `volatile.*` keys, kept apart from `config`. */
  volatile: Record<string, string>;
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
