/** How plans and the ledger name an image import: where it comes from, and what changed. */
import type { FieldChange } from "../../../src/plugin.js";
import type { DesiredImage, LxcLive } from "../types.js";

/** `from META and ROOTFS`, or `built from TARBALL (source SHA-256 …)`. */
export function imageSource(image: DesiredImage): string {
  if ("tarball" in image)
    return `built from ${image.tarball} (source SHA-256 ${image.sourceSha256.slice(0, 12)})`;
  return `from ${image.metadata} and ${image.rootfs}`;
}

/**
 * A re-import's changes: the fingerprint, and for a built image the source tarball's SHA-256
 * (the live one from the image's user.op.source-sha256 property, absent when it has none).
 */
export function imageChanges(image: DesiredImage, current: string, live: LxcLive): FieldChange[] {
  const changes: FieldChange[] = [
    { path: "fingerprint", before: current, after: image.fingerprint },
  ];
  if (!("tarball" in image)) return changes;
  const before = live.images?.find((candidate) => candidate.fingerprint === current)?.sourceSha256;
  changes.push({
    path: "source_sha256",
    ...(before === undefined ? {} : { before }),
    after: image.sourceSha256,
  });
  return changes;
}
