/**
 * `op rollback RUN`: undoes a completed run from the pre-image its records name
 * (src/engine/images.ts), as a new run of the engine with that pre-image as its file: planned,
 * printed, applied, verified and recorded like any apply, its own record naming the run it
 * undoes. Refused when the pre-image cannot restore something, when the host has changed the
 * run's resources since (unless --force), or when the run was already undone (unless --force).
 */
import { createCtx } from "../context.js";
import {
  changedSince,
  type ImageReference,
  imageNow,
  imageRecord,
  liveFor,
  postName,
  type RunImage,
  readImage,
  undoDocument,
  unrestorable,
} from "../engine/images.js";
import type { RunReport } from "../engine/run.js";
import { OpError } from "../errors.js";
import { type BlobStore, blobDirectory, fileBlobStore } from "../ledger/blobs.js";
import type { Ledger, LedgerRecord } from "../ledger/index.js";
import type { PluginRegistry } from "../registry.js";
import { type ApplyOptions, applyParsed, noteRun, paths, runDeps, withLedger } from "./commands.js";
import { type PruneReference, pruneRecord } from "./prune-images.js";

export interface RollbackOptions extends ApplyOptions {
  /** Undo even though the host changed the run's resources since, or it was undone already. */
  force?: boolean;
}

/** A run as its records tell it. */
export interface RecordedRun {
  run: string;
  /** Its pre-image's blob, from its image record. */
  preimage: string;
  /** Runs that undid it, by their image records. */
  undoneBy: string[];
  /** The `op ledger prune-images` record that removed its pre-image. */
  prunedBy?: { seq: number; time: string };
}

export async function rollbackCommand(
  runText: string,
  options: RollbackOptions,
  registry: PluginRegistry,
): Promise<number> {
  const started = Date.now();
  const file = `rollback of run ${runText}`;
  let report: RunReport | undefined;
  try {
    const exit = await rollback(runText, options, registry, (done) => {
      report = done;
    });
    await noteRun(file, options, { mode: "apply", started, exit, ...(report ? { report } : {}) });
    return exit;
  } catch (error) {
    const exit = error instanceof OpError ? error.exitCode : 70;
    await noteRun(file, options, { mode: "apply", started, exit, error });
    throw error;
  }
}

/** Undoes `runText` (a run id, or its first 8 or more characters); returns the exit code. */
export async function rollback(
  runText: string,
  options: RollbackOptions,
  registry: PluginRegistry,
  done: (report: RunReport) => void,
): Promise<number> {
  const where = paths(options);
  const store = fileBlobStore(blobDirectory(where.ledgerDir));
  const confirm = await import("./confirm.js");
  // From the deadline's own watcher, the run was withdrawn already; by hand, it is now.
  await confirm.rollBackExpired(options, registry);
  const found = await withLedger(options, (ledger) => findRun(ledger, runText));
  if (found.undoneBy.length > 0 && options.force !== true) {
    throw new OpError(
      "invalid-state",
      `run ${found.run} was already undone by run ${found.undoneBy.join(", ")}`,
      { hint: "nothing to roll back; --force undoes it again from the same pre-image" },
    );
  }
  if (found.prunedBy !== undefined && store.get(found.preimage) === undefined) {
    throw new OpError(
      "not-found",
      `run ${found.run} cannot be undone: its pre-image (blob ${found.preimage}) was pruned by op ledger prune-images (ledger record ${found.prunedBy.seq}, ${found.prunedBy.time})`,
      {
        hint: "nothing was changed; undo it by applying a file, and give prune-images a larger --keep to keep more runs undoable",
      },
    );
  }
  const pre = readImage(store, found.preimage, `pre-image of run ${found.run}`);
  const cannot = unrestorable(pre);
  if (cannot.length > 0) {
    throw new OpError(
      "invalid-state",
      `run ${found.run} cannot be undone: its pre-image cannot restore ${cannot.length} thing(s)`,
      { details: cannot, hint: "nothing was changed; undo these by hand, or apply a file" },
    );
  }
  const document = undoDocument(pre);
  const plugins = Object.keys(document.plugins);
  const deps = runDeps(`rollback-of-${found.run}`, options, registry, {
    // The pre-image is the host as it was: the uplink guard must not keep it from coming back,
    // a container's config must not wait for a restart, and what the run adopted is op's now.
    allowUplink: true,
    allowRestart: true,
    adopt: true,
  });
  // The host lock is held from the check to the end of the undo, so nothing changes the
  // resources between the two; the run itself then takes no lock of its own.
  const lock = await deps.lock();
  try {
    if (options.force !== true)
      await refuseIfChanged(found.run, pre, store, plugins, registry, options);
    if ((await confirm.withdraw(options, found.run)) !== undefined) {
      process.stderr.write(`op: run ${found.run} awaited confirmation; it is undone now instead\n`);
    }
    return await applyParsed(
      { file: `rollback of run ${found.run}`, parsed: document, plugins, rollbackOf: found.run },
      options,
      { ...deps, lock: async () => ({ release: () => {} }) },
      done,
    );
  } finally {
    lock.release();
  }
}

/** The run whose id is `text` or starts with it, with its pre-image and the runs that undid it. */
export async function findRun(ledger: Ledger, text: string): Promise<RecordedRun> {
  if (!/^[0-9a-f-]{8,36}$/i.test(text)) {
    throw new OpError("usage", `"${text}" is not a run id`, {
      hint: "give the run's id or its first 8 characters, as op ledger log prints them",
    });
  }
  const images: (LedgerRecord & { changes: ImageReference })[] = [];
  const prunes: (LedgerRecord & { changes: PruneReference })[] = [];
  const runs = new Set<string>();
  for await (const record of ledger.records()) {
    if (record.plugin === pruneRecord.plugin && record.target === pruneRecord.target) {
      prunes.push(record as LedgerRecord & { changes: PruneReference });
      continue;
    }
    if (record.run.startsWith(text)) runs.add(record.run);
    if (
      record.plugin === imageRecord.plugin &&
      record.target === imageRecord.target &&
      record.status === "ok"
    )
      images.push(record as LedgerRecord & { changes: ImageReference });
  }
  if (runs.size > 1) {
    throw new OpError("usage", `"${text}" names ${runs.size} runs: ${[...runs].join(", ")}`, {
      hint: "give more of the run's id",
    });
  }
  const [run] = [...runs];
  if (run === undefined) {
    throw new OpError("not-found", `the ledger has no run ${text}`, {
      hint: "op ledger log lists the runs; a run that changed nothing has no records",
    });
  }
  // The chain's record names the pre-image; the name beside the blobs is not trusted.
  const preimage = images.find((r) => r.run === run)?.changes.preimage;
  if (preimage === undefined) {
    throw new OpError("not-found", `run ${run} has no pre-image, so op cannot undo it`, {
      hint: "only runs that changed the host with this version of op keep one",
    });
  }
  const pruned = prunes.find((r) => r.changes.pruned.some((p) => p.run === run));
  return {
    run,
    preimage,
    undoneBy: images.filter((r) => r.changes.rollbackOf === run).map((r) => r.run),
    ...(pruned === undefined ? {} : { prunedBy: { seq: pruned.seq, time: pruned.time } }),
  };
}

/**
 * Refuses an undo that would overwrite a change made since the run: the host's resources must
 * still be as the run left them (its post-image).
 */
async function refuseIfChanged(
  run: string,
  pre: RunImage,
  store: BlobStore,
  plugins: readonly string[],
  registry: PluginRegistry,
  options: RollbackOptions,
): Promise<void> {
  const postHash = store.named(postName(run));
  if (postHash === undefined) {
    throw new OpError(
      "invalid-state",
      `run ${run} did not end verified, so op cannot tell whether its resources changed since`,
      { hint: "look at the host (op plan of the run's file); --force undoes it all the same" },
    );
  }
  const post = readImage(store, postHash, `post-image of run ${run}`);
  const ctx = createCtx({ settings: options.settings, verbose: options.verbose ?? false });
  const loaded = await registry.load(new Set(plugins));
  const lives = new Map<string, unknown>();
  for (const plugin of loaded) {
    lives.set(plugin.name, await liveFor(plugin, pre.plugins[plugin.name]?.section, ctx));
  }
  const now = await imageNow(
    pre,
    loaded.map((plugin) => ({ plugin })),
    ctx,
    (name) => lives.get(name),
  );
  const changed = changedSince(post, now);
  if (changed.length > 0) {
    throw new OpError(
      "invalid-state",
      `refusing to undo run ${run}: ${changed.length} of its resources changed since it ran`,
      {
        details: changed,
        hint: "an undo would overwrite these changes; op rollback --force undoes the run all the same",
      },
    );
  }
}
