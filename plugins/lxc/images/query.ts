/**
 * The image store from one `GET /1.0/images?recursion=1` (aliases and properties included), and
 * which instances use each image from the instance listing the containers come from: no call
 * per image or per instance.
 */
import { byCodeUnit, byName } from "../../../src/order.js";
import { defaultProject } from "../refs.js";
import {
  type ImageUser,
  imageManagedProperty,
  type LiveImage,
  sourceShaProperty,
} from "./types.js";

/** An image as Incus lists it (the fields op reads). */
export interface IncusImage {
  fingerprint: string;
  aliases: { name: string; description?: string }[] | null;
  properties: Record<string, string> | null;
}

/** An instance as Incus lists it (the fields op reads here). */
export interface IncusInstanceConfig {
  name: string;
  project?: string;
  config: Record<string, string> | null;
}

export function liveImages(
  images: readonly IncusImage[],
  users: readonly IncusInstanceConfig[],
): LiveImage[] {
  const usedBy = new Map<string, ImageUser[]>();
  for (const user of users) {
    const base = user.config?.["volatile.base_image"];
    if (base === undefined) continue;
    const list = usedBy.get(base) ?? [];
    list.push({ project: user.project ?? defaultProject, name: user.name });
    usedBy.set(base, list);
  }
  return images
    .map((image) => ({
      fingerprint: image.fingerprint,
      aliases: (image.aliases ?? [])
        .map((alias) => ({ name: alias.name, description: alias.description ?? "" }))
        .sort(byName),
      managed: image.properties?.[imageManagedProperty] === "true",
      usedBy: usedBy.get(image.fingerprint) ?? [],
      ...sourceOf(image),
    }))
    .sort((a, b) => byCodeUnit(a.fingerprint, b.fingerprint));
}

function sourceOf(image: IncusImage): { sourceSha256?: string } {
  const sha = image.properties?.[sourceShaProperty];
  return sha === undefined ? {} : { sourceSha256: sha };
}

/** Alias → fingerprint, as prepare and the import diff read them. */
export function aliasTargets(images: readonly LiveImage[]): Record<string, string> {
  return Object.fromEntries(
    images.flatMap((image) => image.aliases.map((alias) => [alias.name, image.fingerprint])),
  );
}
