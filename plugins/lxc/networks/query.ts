/**
 * Every managed network of every project in one call. Links Incus lists without managing them
 * (eth0, host bridges) are the network plugin's and are left out.
 */
import type { IncusClient } from "../../../src/incus.js";
import {
  asListed,
  everyProject,
  type IncusObject,
  liveObject,
  volatileConfig,
} from "../objects.js";
import type { LiveNetwork } from "./types.js";

interface IncusNetwork extends IncusObject {
  name: string;
  project?: string;
  type: string;
  managed: boolean;
  /** `Pending` between a cluster's two steps: defined on members, not created. */
  status?: string;
}

export async function queryNetworks(incus: IncusClient): Promise<LiveNetwork[]> {
  const listed = await incus.request<IncusNetwork[]>(
    "GET",
    `/1.0/networks?recursion=1${everyProject(incus)}`,
    undefined,
    { what: "listing managed networks" },
  );
  return (
    asListed(incus, listed)
      // A pending network (a run stopped between a cluster's two steps) is not there yet: the
      // plan creates it, and the create finishes it.
      .filter((network) => network.managed && network.status !== "Pending")
      .map(liveNetwork)
  );
}

export function liveNetwork(network: IncusNetwork & { inherited?: true }): LiveNetwork {
  return {
    name: network.name,
    type: network.type,
    ...liveObject(network),
    volatile: volatileConfig(network.config),
  };
}
