/** What the unit tests of networks and volumes share: a problem collector, an owned object. */

import { type Leaves, leavingIds } from "./objects.js";

/** What a run deletes, by container and profile ids (nothing when not given). */
export function leavingOf(ids: { containers?: string[]; profiles?: string[] } = {}): Leaves {
  return leavingIds({ containers: new Set(ids.containers), profiles: new Set(ids.profiles) });
}

/** Collects problems as `PATH: MESSAGE` lines, as prepare reports them. */
export function collect(): { lines: string[]; add(path: string, message: string): void } {
  const lines: string[] = [];
  return { lines, add: (path, message) => lines.push(`${path}: ${message}`) };
}

/** The fields of a network or volume op created, in the default project, used by nothing. */
export function ownedFields() {
  return {
    project: "default",
    managed: true,
    description: "",
    config: { "user.op.managed": "true" } as Record<string, string>,
    volatile: {},
    usedBy: [] as string[],
  };
}
