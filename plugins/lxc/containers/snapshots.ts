/**
 * A container's named snapshots (`snapshots.keep`): the file's form, the live one, and what
 * differs. Incus's scheduler makes and expires the scheduled ones itself (config keys); op only
 * creates the declared names when missing and, with `prune`, deletes the rest that the schedule
 * did not make.
 *
 * The instance listing has no snapshots, and reading them costs one call per container
 * (`recursion=2` would also gather every instance's runtime state, which costs far more). So
 * the query reads them only for containers that carry `user.op.snapshots`, the tag op writes
 * on a container whose file declares named snapshots: a container without them costs nothing.
 */
import type { FieldChange } from "../../../src/plugin.js";
import { madeBySchedule } from "./schedule.js";

export interface DesiredSnapshot {
  name: string;
  stateful: boolean;
}

export interface DesiredSnapshots {
  keep: DesiredSnapshot[];
  /** Delete the snapshots not in `keep` that the schedule did not make. */
  prune: boolean;
}

/** The tag's value: the declared names, and whether op prunes the others. */
export function snapshotsTag(snapshots: DesiredSnapshots): string {
  return `${snapshots.keep.map((snapshot) => snapshot.name).join(",")}${snapshots.prune ? ";prune" : ""}`;
}

/** Snapshot names from Incus's listing of their URLs (`/1.0/instances/web/snapshots/base`). */
export function snapshotNames(urls: readonly string[]): string[] {
  return urls.map((url) => decodeURIComponent((url.split("?")[0] ?? url).split("/").pop() ?? ""));
}

/** The change entries' path of one snapshot. */
export const snapshotPath = (name: string) => `snapshots.${name}`;

/**
 * Declared snapshots that are missing, and (with prune) the ones to delete. `live` is undefined
 * when the query did not read them (no tag yet): the tag's own change then brings the apply.
 */
export function snapshotChanges(
  desired: DesiredSnapshots | undefined,
  live: readonly string[] | undefined,
  pattern: string | undefined,
): FieldChange[] {
  if (desired === undefined || live === undefined) return [];
  const have = new Set(live);
  const declared = new Set(desired.keep.map((snapshot) => snapshot.name));
  const changes: FieldChange[] = desired.keep
    .filter((snapshot) => !have.has(snapshot.name))
    .map((snapshot) => ({
      path: snapshotPath(snapshot.name),
      after: snapshot.stateful ? "stateful snapshot" : "snapshot",
    }));
  if (desired.prune) {
    for (const name of live) {
      if (!declared.has(name) && !madeBySchedule(name, pattern))
        changes.push({ path: snapshotPath(name), before: "snapshot" });
    }
  }
  return changes;
}

/** The snapshots to create and to delete, given the names the container has now. */
export function snapshotWork(
  desired: DesiredSnapshots,
  live: readonly string[],
  pattern: string | undefined,
): { create: DesiredSnapshot[]; remove: string[] } {
  const changes = snapshotChanges(desired, live, pattern);
  const named = (change: FieldChange) => change.path.slice("snapshots.".length);
  return {
    create: desired.keep.filter((snapshot) =>
      changes.some((change) => change.after !== undefined && named(change) === snapshot.name),
    ),
    remove: changes.filter((change) => change.after === undefined).map(named),
  };
}
