/**
 * Refuses the plan, before any change, when a project op would delete still holds something
 * this run does not delete (Incus removes only empty projects; its `default` profile goes
 * with it).
 */
import type { Problem } from "../../../src/plugin.js";
import { deletedIn, usersThatStay, usersWords } from "../objects.js";
import { profileRef } from "../refs.js";
import type { LxcAction } from "../types.js";

export function guardProjects(actions: readonly LxcAction[]): Problem[] {
  return actions.flatMap((action) => {
    if (action.resource !== "project" || action.kind !== "delete") return [];
    const { project, path } = action.before;
    const ownDefault = profileRef(project.name, "default").id;
    const held = usersThatStay(project.usedBy, deletedIn(actions)).filter(
      (user) => user.ref?.resource !== "profile" || user.ref.id !== ownDefault,
    );
    if (held.length === 0) return [];
    return [
      {
        path,
        message: `project "${project.name}" still holds ${usersWords(held)}`,
        hint: "op deletes only empty projects: delete what it holds first, or declare it absent in the same file",
      },
    ];
  });
}
