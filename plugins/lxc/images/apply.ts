/**
 * An image delete: the image itself (Incus removes its aliases with it), or only the alias
 * when something keeps the image.
 */
import type { IncusClient } from "../../../src/incus.js";
import type { ImageDelete } from "./types.js";

export async function deleteImage(target: ImageDelete, incus: IncusClient): Promise<void> {
  const { image, alias } = target;
  if (target.withImage) {
    await incus.request("DELETE", `/1.0/images/${image.fingerprint}`, undefined, {
      what: `deleting image ${image.fingerprint.slice(0, 12)}`,
    });
    return;
  }
  if (alias === undefined)
    throw new Error(`bug: an alias delete without an alias (${image.fingerprint})`);
  await incus.request("DELETE", `/1.0/images/aliases/${encodeURIComponent(alias)}`, undefined, {
    what: `removing image alias ${alias}`,
  });
}
