/**
 * `op ledger prune-images [--keep N]`: every changing run stores its pre-image (and, once
 * verified, its post-image) as a blob beside the ledger (src/engine/images.ts), and nothing
 * removed them, so `<ledger>.images/` grew by one or two blobs a run for ever. This keeps the
 * blobs of the last N changing runs (by their `pre-image` records, in ledger order) and of the
 * run a pending `op confirm` waits for, and removes the rest.
 *
 * The chain still names a pruned run's hash, so the removal is recorded first: one `ok` record
 * (plugin `op`, target `pre-images`, action `delete`) lists the runs whose pre-images go, and
 * `op rollback` of such a run then refuses, saying its pre-image was pruned (rollback.ts).
 * It runs under the host lock: an apply writes its blob before the record that names it, and
 * a prune between the two would take a blob no record names yet for an orphan.
 */
import { randomUUID } from "node:crypto";
import { imageRecord, postName, readImage } from "../engine/images.js";
import { blobDirectory, listBlobStore, removeStored } from "../ledger/blob-files.js";
import { fileBlobStore } from "../ledger/blobs.js";
import type { Ledger } from "../ledger/index.js";
import { acquireLock } from "../lock.js";
import { type GlobalOptions, ledgerIsThere, openLedger, paths } from "./commands.js";
import { pendingConfirm } from "./confirm.js";
import { printDocument } from "./contract.js";

/** The ledger record of a prune: which runs' pre-images it removed. */
export const pruneRecord = { plugin: "op", target: "pre-images" } as const;

/** What a prune record carries in `changes`. */
export interface PruneReference {
  keep: number;
  /** The runs whose pre-image blobs this prune removed, with their hashes. */
  pruned: { run: string; preimage: string }[];
}

export const defaultKeep = 50;

/** A changing run, by its pre-image record. */
export interface ImageRun {
  run: string;
  preimage: string;
}

export interface PruneInput {
  /** Changing runs in ledger order, oldest first (a run once, by its pre-image record). */
  runs: readonly ImageRun[];
  /** How many of the newest runs keep their blobs. */
  keep: number;
  /** The run a pending `op confirm` waits for: its undo needs its pre-image. */
  pending?: string;
  /** The blobs stored (their hashes). */
  blobs: readonly string[];
  /** The names stored (`post-RUN`), with the hash each points at. */
  refs: ReadonlyMap<string, string>;
  /** The files (blobs) a stored pre-image names beside itself (RunImage.files): asked of kept runs. */
  filesOf?: (preimage: string) => readonly string[];
}

/** A blob that goes, and why it was there. */
export interface RemovedBlob {
  blob: string;
  /** `unnamed`: no record or name points at it (a run that failed before its record). */
  what: "pre-image" | "post-image" | "unnamed";
  run?: string;
}

export interface PruneChoice {
  /** The runs whose blobs stay, oldest first. */
  kept: string[];
  /** Kept although older than the newest N: it awaits op confirm. */
  pending?: string;
  /** Runs whose pre-image goes now (one already gone is not listed again). */
  pruned: ImageRun[];
  blobs: RemovedBlob[];
  /** Names (`post-RUN`) that go with their runs. */
  refs: string[];
}

/** Which blobs and names go (pure). A name op did not write as `post-RUN` is kept, with its blob. */
export function choosePrune({
  runs,
  keep,
  pending,
  blobs,
  refs,
  filesOf,
}: PruneInput): PruneChoice {
  const newest = runs.slice(Math.max(0, runs.length - keep)).map((r) => r.run);
  const kept = new Set(newest);
  if (pending !== undefined) kept.add(pending);
  const keptRuns = runs.filter((r) => kept.has(r.run)).map((r) => r.run);
  if (pending !== undefined && !keptRuns.includes(pending)) keptRuns.push(pending);

  const needed = new Set(
    runs
      .filter((r) => kept.has(r.run))
      .flatMap((r) => [r.preimage, ...(filesOf?.(r.preimage) ?? [])]),
  );
  const postOf = new Map<string, string>();
  const goingRefs: string[] = [];
  for (const [name, hash] of refs) {
    const run = runOfPost(name);
    if (run === undefined || kept.has(run)) needed.add(hash);
    else {
      goingRefs.push(name);
      postOf.set(hash, run);
    }
  }
  const stored = new Set(blobs);
  const preOf = new Map(runs.map((r) => [r.preimage, r.run]));
  const removed: RemovedBlob[] = [...stored]
    .filter((blob) => !needed.has(blob))
    .sort()
    .map((blob) => {
      const pre = preOf.get(blob);
      if (pre !== undefined) return { blob, what: "pre-image", run: pre };
      const post = postOf.get(blob);
      return post !== undefined
        ? { blob, what: "post-image", run: post }
        : { blob, what: "unnamed" };
    });
  return {
    kept: keptRuns,
    ...(pending !== undefined && !newest.includes(pending) ? { pending } : {}),
    pruned: runs.filter((r) => !kept.has(r.run) && stored.has(r.preimage)),
    blobs: removed,
    refs: goingRefs.sort(),
  };
}

/**
 * The files a stored pre-image names beside itself; none when it is gone. One that cannot be
 * read stops the prune: what it names would otherwise be taken for nobody's.
 */
function keptFiles(dir: string, preimage: string): readonly string[] {
  const store = fileBlobStore(dir);
  if (store.get(preimage) === undefined) return [];
  return readImage(store, preimage, "pre-image").files ?? [];
}

/** The run a `post-RUN` name is of. */
function runOfPost(name: string): string | undefined {
  const prefix = postName("");
  return name.startsWith(prefix) ? name.slice(prefix.length) : undefined;
}

/** The changing runs, oldest first, by their `pre-image` records. */
export async function imageRuns(ledger: Ledger): Promise<ImageRun[]> {
  const runs: ImageRun[] = [];
  const seen = new Set<string>();
  for await (const record of ledger.records({ plugin: imageRecord.plugin })) {
    if (record.target !== imageRecord.target || record.status !== "ok") continue;
    const preimage = (record.changes as { preimage?: unknown } | undefined)?.preimage;
    if (typeof preimage !== "string" || seen.has(record.run)) continue;
    seen.add(record.run);
    runs.push({ run: record.run, preimage });
  }
  return runs;
}

export interface PruneOptions extends GlobalOptions {
  keep?: number;
  dryRun?: boolean;
  lockTimeout?: number;
}

export async function pruneImagesCommand(options: PruneOptions): Promise<number> {
  const where = paths(options);
  const dir = blobDirectory(where.ledgerDir);
  const keep = options.keep ?? defaultKeep;
  const lock = await acquireLock(where.lockFile, { timeoutSeconds: options.lockTimeout ?? 0 });
  let choice: PruneChoice;
  let seq: number | undefined;
  try {
    // No ledger, no runs: what the store holds is then nobody's (a ledger moved away by hand).
    const ledger = ledgerIsThere(where.ledgerDir)
      ? await openLedger(where, options.dryRun !== true)
      : undefined;
    try {
      const pending = pendingConfirm(options)?.run;
      choice = choosePrune({
        runs: ledger === undefined ? [] : await imageRuns(ledger),
        keep,
        ...(pending === undefined ? {} : { pending }),
        ...listBlobStore(dir),
        filesOf: (preimage) => keptFiles(dir, preimage),
      });
      const changes: PruneReference = {
        keep,
        pruned: choice.pruned.map(({ run, preimage }) => ({ run, preimage })),
      };
      // Recorded before anything goes: an interrupted prune leaves blobs the record names as
      // pruned (an undo of them still works), never a missing blob the chain is silent about.
      if (ledger !== undefined && !options.dryRun && choice.pruned.length > 0) {
        ({ seq } = await ledger.append({
          run: randomUUID(),
          ...pruneRecord,
          action: "delete",
          changes,
          status: "ok",
        }));
        await ledger.checkpoint();
      }
    } finally {
      await ledger?.close();
    }
    if (!options.dryRun) {
      for (const name of choice.refs) removeStored(dir, `${name}.ref`);
      for (const { blob } of choice.blobs) removeStored(dir, blob);
    }
  } finally {
    lock.release();
  }
  report(choice, { keep, dryRun: options.dryRun === true, seq, json: options.json === true });
  return 0;
}

function report(
  choice: PruneChoice,
  how: { keep: number; dryRun: boolean; seq: number | undefined; json: boolean },
): void {
  if (how.json) {
    const out = {
      keep: how.keep,
      dryRun: how.dryRun,
      kept: choice.kept,
      pruned: choice.pruned.map((r) => r.run),
      removed: choice.blobs,
      refs: choice.refs,
      ...(how.seq === undefined ? {} : { record: how.seq }),
    };
    printDocument(out);
    return;
  }
  const verb = how.dryRun ? "would remove" : "removed";
  const lines = choice.blobs.map(
    (b) => `${verb} ${b.blob}  ${b.what}${b.run === undefined ? "" : ` of run ${b.run}`}`,
  );
  lines.push(
    `${verb} ${choice.blobs.length} blob(s) and ${choice.refs.length} name(s); kept those of ${choice.kept.length} run(s) (--keep ${how.keep}${choice.pending === undefined ? "" : `, and run ${choice.pending} that awaits op confirm`})`,
  );
  if (how.seq !== undefined) lines.push(`ledger record ${how.seq} names the pruned runs`);
  process.stdout.write(`${lines.join("\n")}\n`);
}
