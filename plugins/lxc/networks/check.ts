/**
 * The file's half of `networks[]`: each entry normalised (typed fields and raw keys that must
 * agree), names used once per project, and declared addresses that overlap. Pure; run by
 * `op validate` (plugins/lxc/check.ts) and by prepare.
 */
import { BlockList, isIPv4 } from "node:net";
import { declaredFirst, ownedConfig, type TypedKey } from "../holding.js";
import type { ProblemSink } from "../objects.js";
import { defaultProject, networkId } from "../refs.js";
import type { LxcSection } from "../types.js";
import { type DesiredNetwork, networkKeys, networkType } from "./types.js";

export function checkNetworks(
  section: LxcSection,
  base: string,
  problems: ProblemSink,
): DesiredNetwork[] {
  const seen = new Map<string, string>();
  const networks: DesiredNetwork[] = [];
  for (const [index, spec] of (section.networks ?? []).entries()) {
    const path = `${base}/networks/${index}`;
    const project = spec.project ?? defaultProject;
    const id = networkId(project, spec.name);
    if (!declaredFirst(seen, id, path, "network", problems)) continue;
    const typed = Object.entries(networkKeys).map(
      ([field, key]): TypedKey => [
        key,
        `${path}/${field}`,
        spec[field as keyof typeof networkKeys],
      ],
    );
    const { config, paths, adopt } = ownedConfig(spec, path, typed, problems);
    networks.push({
      name: spec.name,
      project,
      path,
      ensure: spec.ensure ?? "present",
      adopt,
      type: spec.type ?? networkType,
      ...(spec.description === undefined ? {} : { description: spec.description }),
      config,
      paths,
    });
  }
  const present = networks.filter((network) => network.ensure === "present");
  for (const [i, network] of present.entries()) {
    for (const other of present.slice(0, i)) {
      const clash = overlapOf(network.config, other.config);
      if (clash !== undefined) {
        problems.add(
          network.paths[clash.key] ?? network.path,
          `${clash.mine} overlaps ${clash.theirs} of network ${other.name} (${other.path}); each network needs a subnet of its own`,
        );
      }
    }
  }
  return networks;
}

/** `198.18.200.1/24` as an address and prefix; `none`, `auto` and the like give undefined. */
export function subnetOf(
  value: string | undefined,
): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const match = /^([0-9A-Fa-f:.]+)\/([0-9]{1,3})$/.exec(value ?? "");
  if (match === null) return undefined;
  const [, address = "", prefix = ""] = match;
  return { address, prefix: Number(prefix), family: isIPv4(address) ? "ipv4" : "ipv6" };
}

/** Whether two subnets share an address: the wider one holds the other's address. */
export function subnetsOverlap(a: string, b: string): boolean {
  const left = subnetOf(a);
  const right = subnetOf(b);
  if (left === undefined || right === undefined || left.family !== right.family) return false;
  return holds(left, right.address) || holds(right, left.address);
}

/** Whether `address` is in the subnet (a malformed subnet holds nothing). */
export function holds(
  subnet: { address: string; prefix: number; family: "ipv4" | "ipv6" },
  address: string,
): boolean {
  const list = new BlockList();
  try {
    list.addSubnet(subnet.address, subnet.prefix, subnet.family);
    return list.check(address, subnet.family);
  } catch {
    return false;
  }
}

const addressKeys = ["ipv4.address", "ipv6.address"] as const;

/** The first of two networks' subnets that overlap, and the key that gives it. */
export function overlapOf(
  mine: Record<string, string>,
  theirs: Record<string, string>,
): { key: string; mine: string; theirs: string } | undefined {
  for (const key of addressKeys) {
    const a = mine[key];
    const b = theirs[key];
    if (a !== undefined && b !== undefined && subnetsOverlap(a, b)) {
      return { key, mine: a, theirs: b };
    }
  }
  return undefined;
}
