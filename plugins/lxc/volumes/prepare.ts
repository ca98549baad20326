/**
 * The host's half of `volumes[]` and of a container's `volumes`: the pool exists; a volume
 * that is not op's is changed or deleted only by adoption (holding.ts); a size never shrinks and a
 * content type never changes; a volume a container that stays has attached is not deleted; a
 * container attaches a volume that exists or is declared.
 */
import {
  inheritedProblem,
  type Leaves,
  type ProblemSink,
  usersThatStay,
  usersWords,
} from "../objects.js";
import { memoryBytes } from "../prepare.js";
import { volumeId } from "../refs.js";
import type { AttachedVolume, DesiredVolume, LivePool, LiveVolume } from "./types.js";

export interface VolumeContext {
  problems: ProblemSink;
  /** The containers and profiles this run deletes: they no longer hold anything. */
  leaving: Leaves;
}

export function resolveVolumes(
  volumes: readonly DesiredVolume[],
  live: { pools: readonly LivePool[]; volumes: readonly LiveVolume[] },
  context: VolumeContext,
): void {
  const { problems } = context;
  const byId = new Map(live.volumes.map((volume) => [idOf(volume), volume]));
  for (const volume of volumes) {
    if (!live.pools.some((pool) => pool.name === volume.pool)) {
      problems.add(`${volume.path}/pool`, poolMissing(volume.pool, live.pools));
      continue;
    }
    const current = byId.get(idOf(volume));
    if (current === undefined) continue;
    if (current.inherited) {
      problems.add(
        `${volume.path}/name`,
        inheritedProblem(`volume ${volume.name} of pool ${volume.pool}`),
      );
      continue;
    }
    if (volume.ensure === "absent") {
      deletable(volume, current, context);
      continue;
    }
    if (current.contentType !== volume.contentType) {
      problems.add(
        `${volume.path}/content_type`,
        `volume ${volume.name} holds ${current.contentType} content on this host, not ${volume.contentType}; a volume's content type is fixed when it is created`,
      );
    }
    shrink(volume, current, problems);
  }
}

/** A size smaller than the live one is refused: shrinking can lose the volume's data. */
function shrink(volume: DesiredVolume, current: LiveVolume, problems: ProblemSink): void {
  const wanted = volume.config.size;
  const now = current.config.size;
  if (wanted === undefined || now === undefined || wanted === now) return;
  const [after, before] = [memoryBytes(wanted), memoryBytes(now)];
  if (after !== undefined && before !== undefined && after < before) {
    problems.add(
      `${volume.path}/size`,
      `volume ${volume.name} is ${now} on this host; op grows a volume but does not shrink it (${wanted} is smaller): copy the data to a new, smaller volume instead`,
    );
  }
}

/**
 * op deletes a volume only once no container that stays has it attached (one op did not create
 * only by adoption: the diff marks it).
 */
function deletable(volume: DesiredVolume, current: LiveVolume, context: VolumeContext): void {
  const users = usersThatStay(current.usedBy, context.leaving);
  if (users.length > 0) {
    context.problems.add(
      `${volume.path}/ensure`,
      `volume ${volume.name} of pool ${volume.pool} is attached to ${usersWords(users)}, which stay${users.length === 1 ? "s" : ""}; detach it first (remove it from the container's "volumes" and apply), then delete it`,
    );
  }
}

/** A container's attachments: each volume exists on the host or is declared present. */
export function checkAttachedVolumes(
  container: { name: string; project: string; attached?: readonly AttachedVolume[] },
  volumes: readonly DesiredVolume[],
  live: { pools: readonly LivePool[]; volumes: readonly LiveVolume[] },
  problems: ProblemSink,
): void {
  for (const attached of container.attached ?? []) {
    if (!live.pools.some((pool) => pool.name === attached.pool)) {
      problems.add(`${attached.path}/pool`, poolMissing(attached.pool, live.pools));
      continue;
    }
    const id = volumeId(container.project, attached.pool, attached.volume);
    const declared = volumes.find((volume) => idOf(volume) === id);
    if (declared?.ensure === "absent") {
      problems.add(
        `${attached.path}/volume`,
        `volume ${attached.volume} is marked "ensure": "absent" at ${declared.path}, but ${container.name} attaches it`,
      );
    } else if (declared === undefined && !live.volumes.some((volume) => idOf(volume) === id)) {
      problems.add(
        `${attached.path}/volume`,
        `volume ${attached.volume} is neither a custom volume of pool ${attached.pool} on this host (incus storage volume list ${attached.pool}) nor declared under plugins.lxc.volumes`,
      );
    }
  }
}

function idOf(volume: { project: string; pool: string; name: string }): string {
  return volumeId(volume.project, volume.pool, volume.name);
}

function poolMissing(pool: string, pools: readonly LivePool[]): string {
  const names = pools.map((known) => known.name).join(", ") || "none";
  return `storage pool ${pool} does not exist on this host (its pools: ${names})`;
}
