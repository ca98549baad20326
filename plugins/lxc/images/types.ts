/**
 * The image store as op sees it for deleting: which images op imported (marked on the image),
 * their aliases (and which of those op made), and which instances still use each one.
 */

/** The image property op sets when it imports an image: only such an image may be deleted. */
export const imageManagedProperty = "user.op.managed";

/** The image property that keeps the source tarball's SHA-256 of an image op built. */
export const sourceShaProperty = "user.op.source-sha256";

/** The description of every alias op creates: such an alias is op's to delete. */
export const opAliasDescription = "imported by op";

export interface LiveAlias {
  name: string;
  description: string;
}

/** An image of the local store (`GET /1.0/images?recursion=1`). */
export interface LiveImage {
  fingerprint: string;
  aliases: LiveAlias[];
  /** Carries `user.op.managed=true` in its properties: op imported it. */
  managed: boolean;
  /** Instances of any project created from it that still use it (`volatile.base_image`). */
  usedBy: ImageUser[];
  /** The source tarball's SHA-256 of an image op built (its user.op.source-sha256 property). */
  sourceSha256?: string;
}

/** An instance (container or VM) by its project and name. */
export interface ImageUser {
  project: string;
  name: string;
}

/** An `images[]` entry with `ensure: absent`. */
export interface DesiredAbsentImage {
  alias: string;
  /** JSON path of the entry in the file, for messages. */
  path: string;
}

/** What an image delete carries (the action's `before`). */
export interface ImageDelete {
  image: LiveImage;
  /** The alias removed (`ensure: absent`); absent when a pruned image has no alias left. */
  alias?: string;
  /** The image goes too, with every alias it has; otherwise only `alias` is removed. */
  withImage: boolean;
}
