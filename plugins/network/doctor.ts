/** What `op doctor` probes for the network plugin (loaded only by `op doctor`). */
import { defaultOvsRunDir, openVswitchDatabase, withOpenVswitch } from "../../src/ovsdb.js";

/** Seconds a doctor probe waits for a daemon: it answers at once when it is healthy. */
export const probeSeconds = 3;

/** OVSDB answers a read on its socket (the way op talks to it): Open vSwitch's version. */
export async function probeOvsdb(): Promise<string> {
  const rows = await withOpenVswitch(
    defaultOvsRunDir,
    { timeoutMs: probeSeconds * 1000 },
    (session) =>
      session.transact(openVswitchDatabase, [
        { op: "select", table: openVswitchDatabase, where: [], columns: ["ovs_version"] },
      ]),
  );
  const version = rows[0]?.rows?.[0]?.ovs_version;
  return `${defaultOvsRunDir}/db.sock: Open vSwitch ${typeof version === "string" ? version : "(version not set)"}`;
}
