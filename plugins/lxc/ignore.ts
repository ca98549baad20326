/** What an lxc section's `ignore` list applies to: containers, by name or `project/name`. */
import type { Ignorable } from "../../src/plugin.js";
import { containerNameOf } from "./prepare.js";
import type { LxcLive, LxcSection } from "./types.js";

export const lxcIgnore: Ignorable<LxcLive> = {
  noun: "container",
  declared: (section) =>
    ((section as LxcSection).containers ?? []).map((spec, i) => {
      const name = containerNameOf(spec);
      return {
        names: [name, `${spec.project ?? "default"}/${name}`],
        path: `/containers/${i}/${spec.name === undefined ? "id" : "name"}`,
      };
    }),
  // Images keep their users: an image an ignored container runs is still in use (prune_images).
  without: (live, ignored) => ({
    ...live,
    containers: live.containers.filter(
      (container) => !ignored(container.name, `${container.project}/${container.name}`),
    ),
  }),
};
