/**
 * Drift of a bridged NIC's host end: its NIC config is right but the kernel's view is not
 * (the veth renamed by hand, taken out of its bridge). `eth0`'s changes keep their paths
 * `veth` and `bridge`; another NIC's are `veth DEVICE` and `bridge DEVICE`.
 */
import type { FieldChange } from "../../../src/plugin.js";
import { type DesiredNic, type LiveContainer, nicDevice } from "../types.js";

/** The host end of a running container's NIC, as the query read it. */
export function liveLink(
  live: LiveContainer,
  device: string,
): { veth?: string; master?: string } | undefined {
  if (device !== nicDevice) return live.nicLinks?.[device];
  return live.veth === undefined ? undefined : { veth: live.veth, master: live.master };
}

/** The change paths of a NIC's drift. */
export function linkPaths(device: string): { veth: string; bridge: string } {
  return device === nicDevice
    ? { veth: "veth", bridge: "bridge" }
    : { veth: `veth ${device}`, bridge: `bridge ${device}` };
}

/** Whether a change is a host-end drift of some NIC, and of which. */
export function driftDevice(path: string): string | undefined {
  const match = /^(veth|bridge)(?: (.+))?$/.exec(path);
  return match === null ? undefined : (match[2] ?? nicDevice);
}

/** The drift of each bridged NIC whose device itself is unchanged (a re-plug settles that). */
export function linkDrift(
  nics: readonly DesiredNic[],
  live: LiveContainer,
  replugged: ReadonlySet<string>,
): FieldChange[] {
  return nics.flatMap((nic) => {
    if (replugged.has(nic.device)) return [];
    const link = liveLink(live, nic.device);
    const paths = linkPaths(nic.device);
    const changes: FieldChange[] = [];
    if (link?.veth !== nic.veth)
      changes.push({ path: paths.veth, ...optional("before", link?.veth), after: nic.veth });
    if (link?.master !== nic.bridge)
      changes.push({ path: paths.bridge, ...optional("before", link?.master), after: nic.bridge });
    return changes;
  });
}

function optional(key: "before", value: string | undefined): { before?: string } {
  return value === undefined ? {} : { [key]: value };
}

/** A drift change in words: `rename veth vi1x → vi1`, `enrol eth1 in br0 (now in br1)`. */
export function describeDrift(change: FieldChange): string | undefined {
  const device = driftDevice(change.path);
  if (device === undefined) return undefined;
  const of = device === nicDevice ? "" : ` of ${device}`;
  if (change.path.startsWith("veth"))
    return `rename veth${of} ${String(change.before ?? "(none)")} → ${String(change.after)}`;
  const what = device === nicDevice ? "" : `${device} `;
  return `enrol ${what}in ${String(change.after)}${change.before === undefined ? "" : ` (now in ${String(change.before)})`}`;
}
