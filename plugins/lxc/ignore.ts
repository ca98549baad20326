/**
 * What an lxc section's `ignore` list applies to: containers, profiles and managed networks,
 * by name or `project/name`, and projects by name.
 */
import type { Ignorable, IgnorableName } from "../../src/plugin.js";
import { containerNameOf } from "./prepare.js";
import type { LxcLive, LxcSection } from "./types.js";

const inProject = (
  noun: string,
  entries: readonly { name: string; project?: string | undefined }[] | undefined,
  at: string,
): IgnorableName[] =>
  (entries ?? []).map((entry, i) => ({
    noun,
    name: entry.name,
    qualified: `${entry.project ?? "default"}/${entry.name}`,
    path: `/${at}/${i}/name`,
  }));

export const lxcIgnore: Ignorable<LxcLive> = {
  declared: (section) => {
    const lxc = section as LxcSection;
    return [
      ...(lxc.containers ?? []).map((spec, i) => {
        const name = containerNameOf(spec);
        return {
          noun: "container",
          name,
          qualified: `${spec.project ?? "default"}/${name}`,
          path: `/containers/${i}/${spec.name === undefined ? "id" : "name"}`,
        };
      }),
      ...inProject("profile", lxc.profiles, "profiles"),
      ...inProject("network", lxc.networks, "networks"),
      ...(lxc.projects ?? []).map((project, i) => ({
        noun: "project",
        name: project.name,
        path: `/projects/${i}/name`,
      })),
    ];
  },
  // Images keep their users: an image an ignored container runs is still in use (prune_images).
  without: (live, ignored) => {
    const visible = <T extends { name: string; project: string }>(objects: T[]) =>
      objects.filter((object) => !ignored(object.name, `${object.project}/${object.name}`));
    return {
      ...live,
      containers: visible(live.containers),
      ...(live.profiles === undefined ? {} : { profiles: visible(live.profiles) }),
      ...(live.networks === undefined ? {} : { networks: visible(live.networks) }),
      ...(live.projects === undefined
        ? {}
        : { projects: live.projects.filter((project) => !ignored(project.name)) }),
    };
  },
};
