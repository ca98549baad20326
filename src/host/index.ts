/**
 * The host layer: everything a plugin reads or changes on the machine besides running
 * commands (ctx.exec) and Incus (ctx.incus). Plugins get it as `ctx.host`; a test replaces
 * a part (a fixture tree for `sys`, an Open vSwitch on a test socket for `ovs`).
 */
import { createNet, type Net } from "./net.js";
import { createOvsHost, type OvsHost, ovsOptions } from "./ovs.js";
import type { Settings } from "./settings.js";
import { createSys, type Sys } from "./sys.js";

export interface Host {
  /** sysfs, procfs, cgroupfs and pid files, under a root directory. */
  sys: Sys;
  /** Open vSwitch: its database's model and the changes op makes to it. */
  ovs: OvsHost;
  /** Whether a service answers (a container's sshd). */
  net: Net;
}

/** The host's own layer, as the settings describe it; `parts` replace what they name. */
export function createHost(settings: Settings, parts: Partial<Host> = {}): Host {
  const sys = parts.sys ?? createSys();
  return {
    sys,
    ovs: parts.ovs ?? createOvsHost(ovsOptions(settings), sys),
    net: parts.net ?? createNet(),
  };
}
