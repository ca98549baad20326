/**
 * The checks of a container's `nics` that need the host: a macvlan parent is a link the host
 * has or the network section declares, and a VLAN tag on a Linux bridge needs that bridge's
 * VLAN filtering (without it the kernel forwards every frame untagged, so the tag would do
 * nothing). Read-only.
 */
import type { Sys } from "../../../src/host/sys.js";
import type { DeclaredLink } from "../networks/prepare.js";
import type { DesiredContainer, LxcContainerSpec } from "../types.js";
import { macvlanParents, nicName } from "./prepare.js";

export interface NicHostContext {
  /** Read only for a container with `nics`. */
  sys: () => Sys;
  /** The links `plugins.network` declares: a parent may be created earlier in the same run. */
  declaredLinks: readonly DeclaredLink[];
  problems: { add(path: string, message: string): void };
}

export function checkNicsOnHost(
  spec: LxcContainerSpec,
  container: DesiredContainer,
  path: string,
  { sys: readSys, declaredLinks, problems }: NicHostContext,
): void {
  if (spec.nics === undefined) return;
  const sys = readSys();
  for (const parent of macvlanParents(spec, path)) {
    if (sys.link(parent.link) !== undefined) continue;
    if (declaredLinks.some((link) => link.name === parent.link)) continue;
    problems.add(
      parent.path,
      `parent link "${parent.link}" does not exist on this host and plugins.network does not declare it`,
    );
  }
  for (const [index, listed] of (spec.nics ?? []).entries()) {
    if (listed.vlan === undefined || listed.type !== "bridged") continue;
    const nic = container.nics?.find((bridged) => bridged.device === nicName(listed, index));
    if (nic?.kind !== "linux") continue;
    const filtering = sys.text(`/sys/class/net/${nic.bridge}/bridge/vlan_filtering`)?.trim();
    if (filtering === "1") continue;
    problems.add(
      `${path}/nics/${index}/vlan`,
      `bridge ${nic.bridge} is a Linux bridge without VLAN filtering, so it cannot carry VLAN ${listed.vlan}: turn its vlan_filtering on (ip link set dev ${nic.bridge} type bridge vlan_filtering 1), or use an Open vSwitch bridge`,
    );
  }
}
