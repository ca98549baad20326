/**
 * The storage pools in one call, then the custom volumes of every project in one call per pool
 * (Incus has no listing across pools). Only custom volumes are listed: the instance and image
 * volumes are Incus's own, and there is one per container.
 */
import type { IncusClient } from "../../../src/incus.js";
import {
  asListed,
  everyProject,
  type IncusObject,
  liveObject,
  volatileConfig,
} from "../objects.js";
import type { LivePool, LiveVolume } from "./types.js";

interface IncusVolume extends IncusObject {
  name: string;
  project?: string;
  type: string;
  content_type: string;
}

export async function queryVolumes(
  incus: IncusClient,
): Promise<{ pools: LivePool[]; volumes: LiveVolume[] }> {
  const pools = await incus.request<LivePool[]>(
    "GET",
    "/1.0/storage-pools?recursion=1",
    undefined,
    { what: "listing storage pools" },
  );
  const perPool = await Promise.all(
    pools.map(async (pool) => {
      const listed = await incus.request<IncusVolume[]>(
        "GET",
        `/1.0/storage-pools/${encodeURIComponent(pool.name)}/volumes/custom?recursion=1${everyProject(incus)}`,
        undefined,
        { what: `listing the volumes of storage pool ${pool.name}` },
      );
      return (
        asListed(incus, listed)
          // Snapshots are listed as `VOLUME/SNAPSHOT`: they belong to their volume.
          .filter((volume) => volume.type === "custom" && !volume.name.includes("/"))
          .map((volume) => liveVolume(pool.name, volume))
      );
    }),
  );
  return {
    pools: pools.map((pool) => ({ name: pool.name, driver: pool.driver })),
    volumes: perPool.flat(),
  };
}

export function liveVolume(pool: string, volume: IncusVolume & { inherited?: true }): LiveVolume {
  return {
    pool,
    name: volume.name,
    contentType: volume.content_type,
    ...liveObject(volume),
    volatile: volatileConfig(volume.config),
  };
}
