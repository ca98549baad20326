/**
 * Refuses the plan, before any change, when a profile op would delete is still used by a
 * container that stays: Incus would refuse the delete halfway through the run.
 */
import type { Problem } from "../../../src/plugin.js";
import { deletedIn, usersThatStay, usersWords } from "../objects.js";
import type { LxcAction } from "../types.js";

export function guardProfiles(actions: readonly LxcAction[]): Problem[] {
  return actions.flatMap((action) => {
    if (action.resource !== "profile" || action.kind !== "delete") return [];
    const { profile, path } = action.before;
    const users = usersThatStay(profile.usedBy, deletedIn(actions));
    if (users.length === 0) return [];
    return [
      {
        path,
        message: `profile "${action.id}" is used by ${usersWords(users)}, which stays`,
        hint: "remove the profile from those containers' profiles first, or delete them in the same run",
      },
    ];
  });
}
