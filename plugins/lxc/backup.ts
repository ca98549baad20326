/**
 * `rollback: snapshot`: a container a run deletes or replaces is kept first as an Incus backup
 * (its disk, snapshots, config and devices, in Incus's own tarball), downloaded into op's image
 * store beside the ledger and named by its SHA-256 in the run's pre-image (`backup`), so the
 * signed chain vouches for it; an undo imports it back under the same name.
 *
 * Why a backup and not a stopped copy under an op-owned name: a copy is an instance on the
 * host (listed, pruned, counted against the project's limits, renamed back only if nothing
 * took its name), and it goes when someone deletes the project; the backup is a file that
 * outlives all of that, and Incus's import restores the instance exactly (volatile MACs too).
 */
import { randomBytes } from "node:crypto";
import { OpError } from "../../src/errors.js";
import type { IncusClient } from "../../src/incus.js";
import { blobDirectory, blobFile } from "../../src/ledger/blobs.js";
import type { Ctx, ImageKeep } from "../../src/plugin.js";
import { containerId, inProject } from "./refs.js";
import { tags } from "./types.js";

type Where = { project: string; name: string };

const backups = (where: Where, below = "") =>
  inProject(`/1.0/instances/${encodeURIComponent(where.name)}/backups${below}`, where.project);

/** Backs `where` up through Incus into the image store; returns the backup's SHA-256. */
export async function keepBackup(
  incus: IncusClient,
  where: Where,
  keep: ImageKeep,
): Promise<string> {
  const label = containerId(where.project, where.name);
  const name = `op-rollback-${randomBytes(4).toString("hex")}`;
  await incus.request(
    "POST",
    backups(where),
    {
      name,
      // Portable (not optimized for one storage driver), with its snapshots: all its disk state.
      instance_only: false,
      optimized_storage: false,
      // Incus drops its own copy by then even if op dies before removing it below.
      expires_at: new Date(Date.now() + expiry).toISOString(),
    },
    { what: `backing up container ${label} before the run deletes it` },
  );
  // Incus's copy is no longer needed once downloaded (and would go with the container anyway).
  const remove = () =>
    incus.request("DELETE", backups(where, `/${encodeURIComponent(name)}`), undefined, {
      what: `removing Incus's copy of the backup of ${label}`,
    });
  let hash: string;
  try {
    hash = await keep.file((path) =>
      incus.downloadBackup(where.name, name, path, {
        project: where.project,
        what: `downloading the backup of container ${label}`,
      }),
    );
  } catch (error) {
    // The download's failure is the one to tell; the copy expires anyway.
    await remove().catch(() => undefined);
    throw error;
  }
  await remove();
  return hash;
}

/** How long Incus keeps its own copy of a backup at most. */
const expiry = 24 * 3600 * 1000;

/** Imports container `where` from the backup `hash` in the run's image store, marked as such. */
export async function restoreBackup(
  incus: IncusClient,
  where: Where,
  hash: string,
  ctx: Ctx,
): Promise<void> {
  const label = containerId(where.project, where.name);
  const dir = blobDirectory(ctx.settings.ledgerDir);
  const file = await blobFile(dir, hash);
  if (file === undefined) {
    throw new OpError("not-found", `container ${label}: its backup ${hash} is not in ${dir}`, {
      hint: "it was removed by hand, or the run was made with another ledger (--ledger): the container cannot be brought back from it",
    });
  }
  await incus.importBackup(file, where.name, {
    project: where.project,
    what: `restoring container ${label} from its backup`,
  });
  // Marked with the backup it came from: the undo's verify, and a second undo, find it done.
  await incus.request(
    "PATCH",
    inProject(`/1.0/instances/${encodeURIComponent(where.name)}`, where.project),
    { config: { [tags.backup]: hash } },
    { what: `marking container ${label} restored` },
  );
}
