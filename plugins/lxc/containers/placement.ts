/**
 * Where a container is on an Incus cluster. `target` (a member, or `@group`) is where Incus
 * creates it; `location` is the member it is on, read by the query and written into the
 * create's ledger record. The location is observed, not drift: Incus may place (and
 * evacuate) instances itself. Only a `target` naming one member that the container is not on
 * is a change, a `move`, which op makes only with `allow_move: true`.
 */
import type { IncusClient } from "../../../src/incus.js";
import type { Applied, FieldChange } from "../../../src/plugin.js";
import { inProject } from "../refs.js";
import type { DesiredContainer, LiveContainer } from "../types.js";

/** The change path of a move. */
export const locationPath = "location";

/** A move, when `target` names a member and the container is on another. */
export function placementChanges(desired: DesiredContainer, live: LiveContainer): FieldChange[] {
  const target = desired.target;
  if (target === undefined || target.startsWith("@") || live.location === undefined) return [];
  if (live.location === target) return [];
  return [{ path: locationPath, before: live.location, after: target }];
}

/** Why a move waits: the file did not allow it. */
export function heldMove(change: FieldChange): string {
  return `move from member ${String(change.before)} to ${String(change.after)}: held (allow it with "allow_move": true on the container)`;
}

export function describeMove(change: FieldChange): string | undefined {
  if (change.path !== locationPath) return undefined;
  return `move from member ${String(change.before)} to ${String(change.after)}`;
}

/** An API path with Incus's `target=` parameter (a member or `@group`) when one is given. */
export function withTarget(path: string, target: string | undefined): string {
  if (target === undefined) return path;
  return `${path}${path.includes("?") ? "&" : "?"}target=${encodeURIComponent(target)}`;
}

/** The member a container is on now, for its ledger record (nothing off a cluster). */
export async function placed(
  incus: IncusClient,
  container: { name: string; project: string },
): Promise<Applied | undefined> {
  const { location } = await incus.request<{ location?: string }>(
    "GET",
    inProject(`/1.0/instances/${encodeURIComponent(container.name)}`, container.project),
    undefined,
    { what: `reading where ${container.name} was placed` },
  );
  return location === undefined || location === "none" ? undefined : { recorded: { location } };
}

/**
 * Moves a container to `member` within the cluster: Incus moves only a stopped container
 * (without CRIU), so a running one is stopped first and started again on its new member.
 */
export async function moveTo(
  incus: IncusClient,
  container: { name: string; project: string },
  member: string,
  wasRunning: boolean,
  stop: () => Promise<void>,
  start: () => Promise<void>,
): Promise<void> {
  if (wasRunning) await stop();
  await incus.request(
    "POST",
    withTarget(
      inProject(`/1.0/instances/${encodeURIComponent(container.name)}`, container.project),
      member,
    ),
    { name: container.name, migration: true },
    { what: `moving ${container.name} to member ${member}` },
  );
  if (wasRunning) await start();
}
