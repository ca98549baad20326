/**
 * An `images[]` entry with `tarball`: checked (template paths, the file a regular tarball),
 * hashed (the source's SHA-256, then the fingerprint of the image op builds from it, by building
 * it once into the hash without writing it anywhere) and cached by path, size, mtime and
 * adaptation, since a system tarball is hundreds of MB. The alias must not name an image op did
 * not build (checkTarballAliases, which needs the host).
 */
import { closeSync, createReadStream, fstatSync } from "node:fs";
import { OpError } from "../../../src/errors.js";
import { openRegularFile } from "../../../src/files.js";
import { escapePointer } from "../../../src/state/validate.js";
import type { LxcImageSpec, LxcLive } from "../types.js";
import { type TarballAdapt, templatePathProblem } from "./adapt.js";
import { adaptedRootfs, metadataTar } from "./tarball.js";
import { imageManagedProperty } from "./types.js";

/** An image op builds from a system tarball (the action's `after`, so the ledger keeps it). */
export interface DesiredTarballImage {
  alias: string;
  path: string;
  /** The source tarball's absolute path. */
  tarball: string;
  /** Its SHA-256: the image property user.op.source-sha256, in metadata.yaml. */
  sourceSha256: string;
  /** Seconds since the epoch (the tarball's mtime): creation_date and added files' mtime. */
  created: number;
  adapt: TarballAdapt;
  /** SHA-256 of the metadata tar then the rootfs tar op builds: Incus's fingerprint. */
  fingerprint: string;
}

/**
 * Bumped whenever the build's output changes for the same input, so cached fingerprints of an
 * older build are not reused.
 */
const buildVersion = 1;

type Problems = { add(path: string, message: string): void };

export async function prepareTarballImage(
  spec: LxcImageSpec & { tarball: string },
  path: string,
  context: {
    resolve: (file: string) => string;
    cache: Record<string, string>;
    used: Record<string, string>;
    problems: Problems;
  },
): Promise<DesiredTarballImage | undefined> {
  const { problems } = context;
  if (spec.metadata !== undefined || spec.rootfs !== undefined) {
    problems.add(
      path,
      'give either "tarball" (op builds the image) or "metadata" and "rootfs" (a split image), not both',
    );
    return undefined;
  }
  const adapt = spec.adapt ?? {};
  let bad = false;
  for (const key of Object.keys(adapt.templates ?? {})) {
    const problem = templatePathProblem(key);
    if (problem === undefined) continue;
    problems.add(`${path}/adapt/templates/${escapePointer(key)}`, problem);
    bad = true;
  }
  const file = context.resolve(spec.tarball);
  let opened: { fd: number };
  try {
    opened = openRegularFile(file, { what: "image tarball" });
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    problems.add(`${path}/tarball`, error.message);
    return undefined;
  }
  try {
    if (bad) return undefined;
    const stats = fstatSync(opened.fd);
    const created = Math.floor(stats.mtimeMs / 1000);
    const { createHash } = process.getBuiltinModule("node:crypto");
    const recipe = createHash("sha256")
      .update(JSON.stringify({ buildVersion, adapt, arch: process.arch }))
      .digest("hex");
    const key = `tarball|${file}:${stats.size}:${stats.mtimeMs}|${recipe}`;
    const cached = context.cache[key]?.split(":");
    const [sourceSha256, fingerprint] =
      cached?.length === 2 ? cached : await hashTarball(file, opened.fd, created, adapt);
    context.used[key] = `${sourceSha256}:${fingerprint}`;
    return {
      alias: spec.alias,
      path,
      tarball: file,
      sourceSha256: sourceSha256 as string,
      created,
      adapt,
      fingerprint: fingerprint as string,
    };
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    problems.add(`${path}/tarball`, error.message);
    return undefined;
  } finally {
    closeSync(opened.fd);
  }
}

/**
 * The source's SHA-256 (one read of the file), then the fingerprint of the image built from
 * it: metadata.yaml names that SHA-256, so the build needs it first.
 */
async function hashTarball(
  file: string,
  fd: number,
  created: number,
  adapt: TarballAdapt,
): Promise<[string, string]> {
  const { createHash } = process.getBuiltinModule("node:crypto");
  const source = createHash("sha256");
  for await (const chunk of createReadStream("", { fd, autoClose: false, start: 0 }))
    source.update(chunk as Buffer);
  const sourceSha256 = source.digest("hex");
  const image = createHash("sha256");
  image.update(await metadataTar({ file, sourceSha256, created, adapt }));
  const rootfs = await adaptedRootfs({ file, fd, created, adapt }, () => {});
  for await (const chunk of rootfs) image.update(chunk as Buffer);
  return [sourceSha256, image.digest("hex")];
}

/**
 * Refuses an alias of a `tarball` entry that names an image op did not import: op would point
 * the alias away from someone else's image.
 */
export function checkTarballAliases(
  images: readonly { alias: string; path: string; tarball?: string }[],
  live: LxcLive,
  problems: Problems,
): void {
  for (const image of images) {
    if (image.tarball === undefined) continue;
    const owner = (live.images ?? []).find((candidate) =>
      candidate.aliases.some((alias) => alias.name === image.alias),
    );
    if (owner === undefined || owner.managed) continue;
    problems.add(
      `${image.path}/alias`,
      `alias "${image.alias}" already names image ${owner.fingerprint.slice(0, 12)}, which op did not build (it has no ${imageManagedProperty} property); op does not take over an alias it did not make`,
    );
  }
}
