/** The sysctl plugin's data: the file's settings, the live values, the actions' payloads. */
import type { Action, Kind } from "../../src/plugin.js";

export type { SysctlSection, SysctlValue } from "../../src/generated/sysctl.js";

/** Every readable key under `net.` of the namespace op runs in, as the kernel prints it. */
export interface SysctlLive {
  values: Record<string, string>;
}

/** One key the file sets, with its value as text (a number from the file, written out). */
export interface SysctlSetting {
  key: string;
  value: string;
}

export interface SysctlDesired {
  /** In key order, so plans come out the same every run. */
  settings: SysctlSetting[];
}

/** What a create or modify action carries in `after` (and a modify in `before`). */
export interface SysctlPayload {
  value: string;
}

/**
 * The plugin's one resource kind: a kernel parameter (`net.ipv4.ip_forward`), created when a
 * link's key appears in the run and modified otherwise; never deleted.
 */
export type SysctlKinds = { parameter: Kind<SysctlPayload, SysctlPayload, SysctlPayload, never> };
export type SysctlAction = Action<SysctlKinds>;
