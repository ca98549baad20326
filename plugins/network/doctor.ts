/** What `op doctor` probes for the network plugin (loaded only by `op doctor`). */
import type { OvsHost } from "../../src/host/ovs.js";

/** Seconds a doctor probe waits for a daemon: it answers at once when it is healthy. */
export const probeSeconds = 3;

/** OVSDB answers a read on its socket (the way op talks to it): Open vSwitch's version. */
export async function probeOvsdb(ovs: OvsHost): Promise<string> {
  return `${ovs.runDir}/db.sock: Open vSwitch ${await ovs.version(probeSeconds * 1000)}`;
}
