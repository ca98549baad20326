/**
 * Pre-images: what lets a run be undone. Before the first change, each plugin that is to change
 * something describes the resources its actions touch (Plugin.imageScope) as a section of a
 * state file (Plugin.image): the pre-image. It is stored as a content-addressed blob, synced,
 * and named by its SHA-256 in an `ok` record of the run (plugin
 * `op`, target `pre-image`) before its first intent, so the chain vouches for it: an undo
 * restores only the blob whose hash the signed record gives. A rollback run's record also
 * names the run it undoes. After a run verified, the same scope is described again from the
 * host as verify read it: the post-image, kept beside the blobs as `post-RUN` (outside the
 * chain: it only decides whether an undo is refused as unsafe, which --force overrides).
 *
 * An undo (op rollback, an unconfirmed op apply --confirm) is then an ordinary run of
 * `reconcile` with the pre-image as its file, scoped to its plugins: planned, printed, applied,
 * verified and recorded like any run. It is refused when the host has since changed those
 * resources (the host no longer matches the post-image), unless forced.
 */
import { OpError } from "../errors.js";
import type { BlobStore } from "../ledger/blobs.js";
import { canonicalJson } from "../ledger/hash.js";
import type { Action, Ctx, ImageKeep, Plugin } from "../plugin.js";
import { withoutIgnored } from "../state/ignore.js";
import type { LedgerWriter, PlannedRun } from "./reconcile.js";

/** One plugin's part of an image. */
export interface PluginImage {
  /** What the plugin's imageScope returned: read back by its image. */
  scope: unknown;
  /** Its section of a state file; absent: nothing to restore. */
  section?: unknown;
  /** What it cannot restore, one line each. */
  refused: string[];
  /** Each resource's version as the host marks it (src/plugin.ts ResourceImage.marks). */
  marks?: Record<string, string>;
}

/** What is stored as a blob: a run's resources before (or after) it. */
export interface RunImage {
  run: string;
  when: "pre" | "post";
  /** By plugin name, in the run's plugin order. */
  plugins: Record<string, PluginImage>;
  /**
   * The files kept beside it (ImageKeep: an Incus backup) that its sections name: a prune
   * keeps them while it keeps this image.
   */
  files?: string[];
}

/** The ledger record of a run's pre-image (and, for a rollback run, the run it undoes). */
export const imageRecord = { plugin: "op", target: "pre-image" } as const;

/** What an image record carries in `changes`. */
export interface ImageReference {
  /** SHA-256 (hex) of the blob of this run's pre-image. */
  preimage: string;
  plugins: string[];
  /** This run is the undo of that run. */
  rollbackOf?: string;
}

/** The images a run keeps, and where. */
export interface RunImages {
  store: BlobStore;
  /** This run undoes that one: its own image record says so. */
  rollbackOf?: string;
}

/**
 * Takes the pre-image of a planned run, stores it and records its hash (with, for a rollback
 * run, the run it undoes), before anything changes; returns it, for the post-image. Plugins
 * without images are listed as refused.
 */
export async function recordPreImage(
  planned: PlannedRun,
  ctx: Ctx,
  images: RunImages,
  ledger: LedgerWriter,
  run: string,
): Promise<RunImage> {
  const plugins: Record<string, PluginImage> = {};
  const files: string[] = [];
  const keep = keepIn(images.store, files);
  for (const { plugin, live } of planned.prepared) {
    const actions = planned.actions.filter((action) => action.plugin === plugin.name);
    if (actions.length === 0) continue;
    const scope = scopeOf(plugin, actions, live);
    plugins[plugin.name] = await imageOf(plugin, scope, live, ctx, keep);
  }
  const image: RunImage = { run, when: "pre", plugins, ...(files.length > 0 ? { files } : {}) };
  const preimage = images.store.put(canonicalJson(image));
  const changes: ImageReference = {
    preimage,
    plugins: Object.keys(plugins),
    ...(images.rollbackOf === undefined ? {} : { rollbackOf: images.rollbackOf }),
  };
  await ledger.append({ run, ...imageRecord, action: "create", changes, status: "ok" });
  return image;
}

/** The post-image of a run that verified: the same scopes, from the host as verify read it. */
export async function storePostImage(
  pre: RunImage,
  lives: ReadonlyMap<string, unknown>,
  planned: PlannedRun,
  ctx: Ctx,
  store: BlobStore,
): Promise<void> {
  const post = await imageNow(pre, planned.prepared, ctx, (name) => lives.get(name));
  store.name(postName(pre.run), store.put(canonicalJson(post)));
}

export function postName(run: string): string {
  return `post-${run}`;
}

/** `pre`'s scopes described from the host now (plugins `live` gives no state for are left out). */
export async function imageNow(
  pre: RunImage,
  prepared: readonly { plugin: Plugin }[],
  ctx: Ctx,
  live: (plugin: string) => unknown,
): Promise<RunImage> {
  const plugins: Record<string, PluginImage> = {};
  for (const { plugin } of prepared) {
    const before = pre.plugins[plugin.name];
    const state = live(plugin.name);
    if (before === undefined || state === undefined) continue;
    plugins[plugin.name] = await imageOf(plugin, before.scope, state, ctx);
  }
  return { run: pre.run, when: "post", plugins };
}

/** A plugin's scope for its actions; one without images cannot be undone. */
function scopeOf(plugin: Plugin, actions: readonly Action[], live: unknown): unknown {
  return plugin.imageScope?.(actions, live);
}

async function imageOf(
  plugin: Plugin,
  scope: unknown,
  live: unknown,
  ctx: Ctx,
  keep?: ImageKeep,
): Promise<PluginImage> {
  if (plugin.image === undefined || scope === undefined) {
    return { scope: null, refused: [`${plugin.name}: this plugin keeps no pre-images yet`] };
  }
  const { section, refused, marks } = await plugin.image(scope, live, ctx, keep);
  return {
    scope,
    ...(section === undefined ? {} : { section }),
    refused,
    ...(marks === undefined ? {} : { marks }),
  };
}

/** A pre-image's keep (src/plugin.ts ImageKeep), for a store that keeps files; adds to `kept`. */
function keepIn(store: BlobStore, kept: string[]): ImageKeep | undefined {
  const { keepFile } = store;
  if (keepFile === undefined) return undefined;
  return {
    file: async (fill) => {
      const hash = await keepFile.call(store, fill);
      kept.push(hash);
      return hash;
    },
  };
}

/** Reads back a stored image, refusing one that is not what op writes. */
export function readImage(store: BlobStore, hash: string, what: string): RunImage {
  const text = store.get(hash);
  if (text === undefined) {
    throw new OpError("not-found", `the ${what} (blob ${hash}) is not in the image store`, {
      hint: "it was removed by hand: this run cannot be undone from its records",
    });
  }
  const image = JSON.parse(text) as RunImage;
  if (typeof image !== "object" || image === null || typeof image.plugins !== "object") {
    throw new OpError("invalid-state", `the ${what} (blob ${hash}) is not an image op wrote`, {
      hint: "it cannot be used to undo the run",
    });
  }
  return image;
}

/** The state document that undoes a run: the pre-image's sections, as a file `reconcile` reads. */
export function undoDocument(pre: RunImage): { version: 1; plugins: Record<string, unknown> } {
  const plugins: Record<string, unknown> = {};
  for (const [name, image] of Object.entries(pre.plugins)) {
    if (image.section !== undefined) plugins[name] = image.section;
  }
  return { version: 1, plugins };
}

/** What a pre-image cannot restore: an undo refuses them all, with the reasons. */
export function unrestorable(pre: RunImage): string[] {
  return Object.values(pre.plugins).flatMap((image) => image.refused);
}

/**
 * Where the host now differs from a run's post-image, as `plugin /path: was → now` lines: each
 * a resource changed since the run, which an undo would silently overwrite.
 */
export function changedSince(post: RunImage, now: RunImage): string[] {
  const lines: string[] = [];
  for (const [name, image] of Object.entries(post.plugins)) {
    const current = now.plugins[name];
    differences(image.section ?? null, current?.section ?? null, "", (path, was, is) =>
      lines.push(`${name} ${path || "/"}: ${brief(was)} then, ${brief(is)} now`),
    );
    // The host's own mark of a version catches what the section leaves out.
    for (const [resource, mark] of Object.entries(image.marks ?? {})) {
      const now = current?.marks?.[resource];
      if (now !== mark)
        lines.push(
          `${name} ${resource}: ${mark.slice(0, 12)} then, ${now?.slice(0, 12) ?? "none"} now`,
        );
    }
  }
  return lines;
}

/** Calls `found` with each path where two JSON values differ (arrays by position). */
function differences(
  a: unknown,
  b: unknown,
  path: string,
  found: (path: string, a: unknown, b: unknown) => void,
): void {
  if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) return;
  const container = (v: unknown) => typeof v === "object" && v !== null;
  if (!container(a) || !container(b) || Array.isArray(a) !== Array.isArray(b)) {
    found(path, a, b);
    return;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
    differences(left[key], right[key], `${path}/${entryName(left[key] ?? right[key], key)}`, found);
  }
}

/** An array entry by its name when it has one (`interfaces/br0`), else its index. */
function entryName(value: unknown, key: string): string {
  const named = value as { name?: unknown; family?: unknown; to?: unknown } | undefined;
  if (typeof named?.name === "string")
    return typeof named.family === "string" ? `${named.family}/${named.name}` : named.name;
  if (typeof named?.to === "string") return named.to;
  return key;
}

function brief(value: unknown): string {
  const text = value === undefined ? "none" : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The live state a plugin reads now, without what its section (the pre-image's) ignores. */
export async function liveFor(plugin: Plugin, section: unknown, ctx: Ctx): Promise<unknown> {
  return withoutIgnored(plugin, section, await plugin.query(ctx, section));
}
