/**
 * The host-side veths an lxc section declares, and the bridge each is enrolled in, for the
 * network plugin: a bridge port that is a container's veth does not exist before the lxc
 * plugin creates the container (later in the same run), and on a bridge op created it is not a
 * foreign port. Pure and read-only: the engine hands every plugin's prepare the file's other
 * sections (src/plugin.ts), and this is the one place that knows how an lxc section names its
 * veths, so the network plugin never reads the lxc section's fields itself.
 */
import type { LxcContainerSpec, LxcSection } from "../../src/generated/lxc.js";
import type { FileView } from "../../src/plugin.js";
import { nicHostName } from "./nics/prepare.js";
import { meshBridge } from "./prepare.js";
import { plugin } from "./types.js";

/** The host-side veth of container `id` when the file names none: `vi{id}`. */
export function defaultVethName(id: string | number): string {
  return `vi${String(id)}`;
}

/**
 * Whether a link name has the form of a default container veth of a numeric id (`vi100`, or
 * `vi100n1` for a NIC after the first): a bridge port of that form may appear later in a run,
 * even when the lxc section that makes it is in another file.
 */
export function looksLikeContainerVeth(name: string): boolean {
  return /^vi\d+(?:n\d+)?$/.test(name);
}

export interface ContainerVeth {
  /** The host-side name, `veth` or `vi{id}`. */
  veth: string;
  bridge: string;
}

/**
 * The veths of each container of a validated lxc section (its bridged `nics`, or the one of
 * a container with a bridge or of network_type netmaker), by the same rules as the lxc
 * plugin's prepare.
 * Containers marked absent are included: their veth is on the bridge until they are deleted.
 */
export function containerVeths(section: LxcSection | undefined): ContainerVeth[] {
  return (section?.containers ?? []).flatMap(nicsOf);
}

/** The container veths of the file's lxc section, read by its own plugin's name. */
export function fileContainerVeths(file: FileView): ContainerVeth[] {
  return containerVeths(file.sections.get(plugin) as LxcSection | undefined);
}

/** Its bridged `nics` (host_name or `vi{id}`/`vi{id}n{k}`), else the shorthand's one veth. */
function nicsOf(spec: LxcContainerSpec): ContainerVeth[] {
  if (spec.nics !== undefined) {
    return spec.nics.flatMap((nic, index) =>
      nic.type === "bridged" && nic.bridge !== undefined
        ? [{ veth: nic.host_name ?? nicHostName(String(spec.id), index), bridge: nic.bridge }]
        : [],
    );
  }
  const networkType = spec.network_type ?? spec.properties?.network_type;
  const bridge = spec.bridge ?? (networkType === "netmaker" ? meshBridge : undefined);
  if (bridge === undefined) return [];
  return [{ veth: spec.veth ?? defaultVethName(spec.id), bridge }];
}
