/**
 * The host end of a running container's NICs: where Incus put it (`volatile.DEV.host_name`),
 * or, when renamed by hand since, the link whose index the container's side names as its peer.
 * The query reads `eth0` this way into `veth`/`master`, and every other NIC into `nicLinks`.
 */
import type { Sys, SysLink } from "../../../src/host/sys.js";
import { peerIndex } from "../host.js";
import type { Devices, LiveContainer } from "../types.js";
import { nicDevice } from "../types.js";

/** The host end of one NIC device, as the kernel names it now. */
export function hostEnd(
  sys: Sys,
  onHost: string,
  device: string,
  devices: Devices,
  volatile: Record<string, string>,
): SysLink | undefined {
  const recorded = sys.link(volatile[`volatile.${device}.host_name`] ?? "");
  if (recorded !== undefined) return recorded;
  const index = peerIndex(sys, onHost, devices[device]?.name ?? device);
  const renamed = index === undefined ? undefined : sys.linkNameByIndex(index);
  return renamed === undefined ? undefined : sys.link(renamed);
}

/** The host ends of a running container's NICs other than `eth0` (only veth-backed ones). */
export function otherNicLinks(
  sys: Sys,
  onHost: string,
  devices: Devices,
  volatile: Record<string, string>,
): LiveContainer["nicLinks"] {
  const links: NonNullable<LiveContainer["nicLinks"]> = {};
  for (const [device, config] of Object.entries(devices)) {
    if (device === nicDevice || config.type !== "nic" || config.nictype === "macvlan") continue;
    const link = hostEnd(sys, onHost, device, devices, volatile);
    if (link === undefined) continue;
    links[device] = {
      veth: link.name,
      ...(link.master === undefined ? {} : { master: link.master }),
    };
  }
  return Object.keys(links).length === 0 ? undefined : links;
}

/**
 * The links of a container that may be OVS ports (no Linux master): their bridge is looked up.
 * They are the container's own objects (for eth0 the container itself), so the caller sets
 * `master` on them in place.
 */
export function maybeOvsLinks(container: LiveContainer): { veth: string; master?: string }[] {
  const eth0 = container.veth === undefined ? [] : [container as { veth: string; master?: string }];
  return [...eth0, ...Object.values(container.nicLinks ?? {})].filter(
    (link) => link.master === undefined || link.master === "ovs-system",
  );
}
