/**
 * Pure: which images and aliases go. `ensure: absent` removes the alias, and the image with it
 * when op imported it and nothing else keeps it; `prune_images` removes images op imported that
 * nothing keeps. What keeps an image: an alias the file imports or a container of the file
 * names, the same content imported under another alias, another alias (for `ensure: absent`),
 * and any instance created from it that this run does not delete. An image delete needs the
 * container deletes that free it.
 */
import type { ResourceRef } from "../../../src/plugin.js";
import { containerId, imageActionId, imageFingerprintId } from "../refs.js";
import { type LxcAction, type LxcDesired, type LxcLive, plugin } from "../types.js";
import type { ImageDelete, ImageUser, LiveImage } from "./types.js";

/**
 * The deletes of images and aliases. `deleted` maps the containers this run deletes (by
 * container id, as `usedBy` names them) to their delete's ref: an image only they use may go
 * once they have.
 */
export function diffImageDeletes(
  desired: LxcDesired,
  live: LxcLive,
  deleted: ReadonlyMap<string, ResourceRef>,
): LxcAction[] {
  const named = new Set([
    ...desired.images.map((image) => image.alias),
    ...desired.containers.map((container) => container.image),
  ]);
  const imported = new Set(desired.images.map((image) => image.fingerprint));
  const absent = new Set((desired.absentImages ?? []).map((gone) => gone.alias));
  const actions: LxcAction[] = [];
  for (const image of live.images ?? []) {
    const aliases = image.aliases.map((alias) => alias.name);
    const going = aliases.filter((alias) => absent.has(alias));
    const others = aliases.filter((alias) => !absent.has(alias));
    const users = image.usedBy.filter((user) => !deleted.has(userId(user)));
    const keptBy = [
      ...(image.managed ? [] : ["op did not import it"]),
      ...(imported.has(image.fingerprint) ? ["the file imports the same content"] : []),
      ...others.filter((alias) => named.has(alias)).map((alias) => `the file names alias ${alias}`),
      ...(users.length > 0 ? [`used by ${users.map(userId).join(", ")}`] : []),
    ];
    const pruned = desired.pruneImages === true && keptBy.length === 0;
    if (going.length === 0 && !pruned) continue;
    if (pruned || (keptBy.length === 0 && others.length === 0)) {
      const freedBy = image.usedBy.filter((user) => deleted.has(userId(user)));
      const first = going[0] ?? aliases[0];
      actions.push(
        imageDelete(
          first === undefined ? imageFingerprintId(image.fingerprint) : imageActionId(first),
          { image, ...(going[0] === undefined ? {} : { alias: going[0] }), withImage: true },
          `${going.length > 0 ? "ensure: absent" : "not in the file (prune_images)"}: delete image ${short(image)} imported by op${aliasWords(aliases)}${freedBy.length > 0 ? `, once ${freedBy.map(userId).join(", ")} ${freedBy.length === 1 ? "is" : "are"} deleted` : ", no instance uses it"}`,
          freedBy.flatMap((user) => deleted.get(userId(user)) ?? []),
        ),
      );
      continue;
    }
    const why = [...keptBy, ...(others.length > 0 ? [`alias ${others.join(", ")} names it`] : [])];
    for (const alias of going) {
      actions.push(
        imageDelete(
          imageActionId(alias),
          { image, alias, withImage: false },
          `ensure: absent: remove alias ${alias}; image ${short(image)} kept (${why.join("; ")})`,
          [],
        ),
      );
    }
  }
  return actions;
}

function imageDelete(
  id: string,
  before: ImageDelete,
  reason: string,
  needs: ResourceRef[],
): LxcAction {
  return {
    kind: "delete",
    plugin,
    resource: "image",
    id,
    before,
    reason,
    ...(needs.length > 0 ? { needs } : {}),
  };
}

function userId(user: ImageUser): string {
  return containerId(user.project, user.name);
}

function aliasWords(aliases: readonly string[]): string {
  return aliases.length === 0 ? " (no alias)" : ` (alias ${aliases.join(", ")})`;
}

function short(image: LiveImage): string {
  return image.fingerprint.slice(0, 12);
}
