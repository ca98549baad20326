/**
 * The checks of `images[]` entries with `ensure: absent` that need the rest of the file or the
 * host: no container of the file may be created from an alias the file removes, and op removes
 * only an alias it made (its description) or one of an image it imported (its property).
 */
import type { DesiredContainer, LxcLive } from "../types.js";
import { type DesiredAbsentImage, imageManagedProperty, opAliasDescription } from "./types.js";

export function checkAbsentImages(
  absent: readonly DesiredAbsentImage[],
  containers: readonly DesiredContainer[],
  live: LxcLive,
  problems: { add(path: string, message: string): void },
): void {
  const byAlias = new Map(absent.map((gone) => [gone.alias, gone]));
  for (const container of containers) {
    const gone = byAlias.get(container.image);
    if (gone === undefined) continue;
    problems.add(
      container.path,
      `${container.name} is created from image "${container.image}", which ${gone.path} makes absent; give the container another image or drop "ensure": "absent"`,
    );
  }
  for (const gone of absent) {
    for (const image of live.images ?? []) {
      const alias = image.aliases.find((a) => a.name === gone.alias);
      if (alias === undefined || image.managed || alias.description === opAliasDescription)
        continue;
      problems.add(
        `${gone.path}/alias`,
        `alias "${gone.alias}" is not op's (its image ${image.fingerprint.slice(0, 12)} has no ${imageManagedProperty} property and the alias was not made by op); op removes only images it imported: remove it by hand (incus image alias delete ${gone.alias}) or drop this entry`,
      );
    }
  }
}
