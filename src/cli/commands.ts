/**
 * What each command does. program.ts parses the command line; this file runs the work and
 * returns the exit code. Heavy modules are imported here, never on the `--version` path.
 */
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { createCtx, type Paths, resolvePaths } from "../context.js";
import type { StepOutcome } from "../engine/dag.js";
import { summarize } from "../engine/plan.js";
import {
  type ApplyReport,
  applyPlan,
  describePending,
  type LedgerWriter,
  messageOf,
  newRunId,
  notConverged,
  type PlannedRun,
  planState,
  preloadApply,
  recordSettlements,
  type Settlement,
  type StartedQueries,
  settlePending,
  verifyConverged,
} from "../engine/reconcile.js";
import { OpError, withContext } from "../errors.js";
import { checkpointLogPath } from "../ledger/checkpoint-log.js";
import type { Ledger } from "../ledger/index.js";
import { acquireLock } from "../lock.js";
import type { Action, Ctx, Plugin } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import { readStateFile } from "../state/load.js";
import { invalid, type StateDocument, validateState } from "../state/validate.js";
import { trace, traced } from "../trace.js";
import { type Interrupt, signalExitCode, watchInterrupts } from "./interrupt.js";
import { renderRecord } from "./ledger-commands.js";
import { renderOutcome, renderPlan, renderReport } from "./output.js";

export interface GlobalOptions {
  json?: boolean;
  ledger?: string;
  ledgerKey?: string;
  verbose?: boolean;
}

export const exitCodes = { ok: 0, failure: 1, drift: 2, ledgerBad: 3 } as const;

export function paths(options: GlobalOptions): Paths {
  return resolvePaths({
    ...(options.ledger === undefined ? {} : { ledgerDir: options.ledger }),
    ...(options.ledgerKey === undefined ? {} : { keyFile: options.ledgerKey }),
  });
}

function cachePaths(options: GlobalOptions): { cacheDir: string; cacheKeyFile: string } {
  const { cacheDir, cacheKeyFile } = paths(options);
  return { cacheDir, cacheKeyFile };
}

function print(text: string): void {
  process.stdout.write(text);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

interface LoadedState {
  document: StateDocument;
  /** The plugins the file has sections for, in create order. */
  plugins: Plugin[];
}

/** Reads and checks a state file: schemas, then each plugin's own checks; touches nothing. */
async function loadState(file: string, registry: PluginRegistry): Promise<LoadedState> {
  return checkState(await readStateFile(file), file, registry);
}

async function checkState(
  parsed: unknown,
  file: string,
  registry: PluginRegistry,
): Promise<LoadedState> {
  trace("check state");
  const document = validateState(parsed, registry.manifests, file);
  trace("state validated");
  const plugins = await registry.load(document.sections.keys());
  const problems = plugins.flatMap(
    (plugin) =>
      plugin.check?.(
        document.sections.get(plugin.name),
        document.paths.get(plugin.name) ?? "",
        (message) => process.stderr.write(`warning: ${message}\n`),
      ) ?? [],
  );
  if (problems.length > 0) throw invalid(file, problems);
  return { document, plugins };
}

/**
 * Starts reading the host for the plugins a parsed state file names, before the file is
 * checked: the queries wait on ip, nft or Incus while the schemas run, instead of after them.
 * Reading is all a query does; if the file turns out invalid, its results are dropped.
 */
async function startQueries(
  parsed: unknown,
  ctx: Ctx,
  registry: PluginRegistry,
): Promise<StartedQueries> {
  const sections = (parsed as { plugins?: unknown } | null)?.plugins;
  if (typeof sections !== "object" || sections === null) return new Map();
  const names = new Set(Object.keys(sections).flatMap((key) => registry.named(key)?.name ?? []));
  // Loaded first, then queried in one go: each query starts its processes before this returns.
  const plugins = await registry.load(names);
  return new Map(
    plugins.map((plugin) => {
      const live = plugin.query(ctx);
      // Awaited by planState when the file is valid; otherwise no one does, which is no error.
      live.catch(() => {});
      return [plugin.name, live];
    }),
  );
}

export async function validateCommand(
  file: string,
  options: GlobalOptions,
  registry: PluginRegistry,
): Promise<number> {
  const { document } = await loadState(file, registry);
  const names = [...document.sections.keys()];
  if (options.json) printJson({ file, valid: true, plugins: names });
  else print(`${file} is valid (plugins: ${names.join(", ") || "none"})\n`);
  return exitCodes.ok;
}

export async function planCommand(
  file: string,
  options: GlobalOptions,
  registry: PluginRegistry,
): Promise<number> {
  const parsed = await readStateFile(file);
  const ctx = createCtx({
    ...cachePaths(options),
    verbose: options.verbose ?? false,
    run: stateDirOf(file),
  });
  const started = await startQueries(parsed, ctx, registry);
  const { document, plugins } = await checkState(parsed, file, registry);
  showPlan(file, await planState(document, plugins, ctx, started), options);
  return exitCodes.ok;
}

/** Relative paths in a state file are taken from its directory (stdin: the current one). */
function stateDirOf(file: string): { stateDir?: string } {
  return file === "-" ? {} : { stateDir: dirname(resolve(file)) };
}

/** Prints a plan (`op plan`, `op apply --check`); returns its actions in run order. */
function showPlan(
  file: string,
  planned: PlannedRun,
  options: GlobalOptions,
  extra: Record<string, unknown> = {},
): Action[] {
  const actions = planned.plan.steps.map((step) => step.action);
  if (options.json) printJson({ file, ...extra, summary: summarize(actions), actions });
  else print(renderPlan(actions));
  return actions;
}

export interface ApplyOptions extends GlobalOptions {
  check?: boolean;
  lockTimeout?: number;
  concurrency?: number;
  allowUplink?: boolean;
}

/** How long the actions in flight may take to finish after a first SIGINT/SIGTERM. */
export const interruptGraceSeconds = 30;

export async function applyCommand(
  file: string,
  options: ApplyOptions,
  registry: PluginRegistry,
): Promise<number> {
  const parsed = await readStateFile(file);
  const where = paths(options);
  const ctx = createCtx({
    cacheDir: where.cacheDir,
    cacheKeyFile: where.cacheKeyFile,
    verbose: options.verbose ?? false,
    run: { allowUplink: options.allowUplink ?? false, ...stateDirOf(file) },
  });

  if (options.check) {
    const started = await startQueries(parsed, ctx, registry);
    const { document, plugins } = await checkState(parsed, file, registry);
    const planned = await planState(document, plugins, ctx, started);
    const drift = planned.actions.length > 0;
    showPlan(file, planned, options, { drift });
    return drift ? exitCodes.drift : exitCodes.ok;
  }

  const interrupt = watchInterrupts({
    graceSeconds: interruptGraceSeconds,
    say: (line) => process.stderr.write(`${line}\n`),
    exitNow: (code) => process.exit(code),
  });
  try {
    return await applyUnderLock(file, parsed, where, ctx, options, interrupt, registry);
  } finally {
    interrupt.dispose();
  }
}

async function applyUnderLock(
  file: string,
  parsed: unknown,
  where: Paths,
  ctx: Ctx,
  options: ApplyOptions,
  interrupt: Interrupt,
  registry: PluginRegistry,
): Promise<number> {
  // The host is read only under the lock: a read taken while another apply changes the host
  // would plan from a state that is already gone. An invalid file is still told as such
  // rather than as a busy lock.
  const lock = await acquireLock(where.lockFile, {
    timeoutSeconds: options.lockTimeout ?? 0,
  }).catch(async (error: unknown) => {
    await checkState(parsed, file, registry);
    throw error;
  });
  const started = await startQueries(parsed, ctx, registry);
  // While the plugins' queries wait on the host, the ledger and the step runner load and an
  // existing ledger opens: a run that has steps needs them at once, one without just closes it.
  const earlyLedger = openExistingLedger(where);
  preloadApply();
  // One turn of the event loop first: the ledger's open is handed to LevelDB's thread before
  // the schemas take this one (~6 ms), not after everything that keeps it busy until the plan.
  await new Promise((resolve) => setImmediate(resolve));
  let ledgerTaken = false;
  try {
    const { document, plugins } = await checkState(parsed, file, registry);
    const planned = await planState(document, plugins, ctx, started);
    const actions = planned.plan.steps.map((step) => step.action);
    const early = await earlyLedger;
    if (early.error !== undefined) throw early.error;
    const existing = early.ledger;
    // Intents an earlier run left without an outcome (kill -9, a lost daemon): this run's
    // read of the host tells whether each target now matches the file.
    const pending = existing === undefined ? [] : await existing.pending();
    for (const line of describePending(pending)) process.stderr.write(`op: ${line}\n`);
    const settlements = settlePending(pending, planned);
    const run = newRunId();
    if (!options.json) print(renderPlan(actions) + renderSettlements(settlements));
    if (actions.length === 0) {
      if (existing !== undefined) await settleWithoutChanges(existing, run, settlements);
      if (options.json)
        printJson({
          file,
          summary: summarize(actions),
          actions,
          outcomes: [],
          settled: settledJson(settlements),
          converged: true,
        });
      return exitCodes.ok;
    }

    const ledger = await traced(
      "ledger open",
      async () => existing ?? (await openLedger(where, true)),
    );
    ledgerTaken = true;
    const outcomes: { action: Action; outcome: StepOutcome }[] = [];
    let report: ApplyReport;
    try {
      await recordSettlements(ledger, run, settlements);
      if (!options.json) print("\nApplying:\n");
      interrupt.changing();
      report = await applyPlan(planned, ledger, ctx, {
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        checkpoint: false,
        run,
        signal: interrupt.signal,
        onOutcome: (step, outcome) => {
          outcomes.push({ action: step.action, outcome });
          if (!options.json) print(`${renderOutcome(step.action, outcome)}\n`);
        },
      });
    } catch (error) {
      await ledger.close();
      throw error;
    }

    // The run's records are signed, synced and closed while verify reads the host again:
    // neither needs the other, and each is tens of milliseconds. Both are awaited whatever
    // happens to the other, so that a failed verify never cuts the ledger's sync short.
    // Verify first: its processes start before signing takes the thread. An interrupted run
    // does not verify: it was asked to stop.
    const complete =
      report.failed === 0 &&
      report.skipped === 0 &&
      report.unknown === 0 &&
      interrupt.received === undefined;
    const [verified, sealed] = await Promise.allSettled([
      complete ? traced("verify", () => verifyConverged(planned, ctx)) : Promise.resolve(undefined),
      traced("ledger checkpoint", () => ledger.checkpoint()).finally(() =>
        traced("ledger close", () => ledger.close()),
      ),
    ]);
    if (sealed.status === "rejected") throw sealed.reason;
    if (verified.status === "rejected") throw verified.reason;
    const remaining = verified.value;
    const failure = applyFailure(report, outcomes, remaining);
    const interruptedBy = interrupt.received;
    if (options.json) {
      // One document, whatever happened: the error (if any) is part of it.
      printJson({
        file,
        run: report.run,
        summary: summarize(actions),
        actions,
        settled: settledJson(settlements),
        outcomes: outcomes.map(({ action, outcome }) => ({
          kind: action.kind,
          plugin: action.plugin,
          id: action.id,
          status: outcome.status,
          ...(outcome.status === "failed" || outcome.status === "unknown"
            ? { error: messageOf(outcome.error) }
            : {}),
          ...(outcome.status === "skipped" ? { because: outcome.because } : {}),
        })),
        converged: remaining !== undefined && remaining.length === 0,
        remaining: remaining ?? [],
        ...(interruptedBy === undefined ? {} : { interrupted: interruptedBy }),
        ...(failure ? { error: failure.toJSON() } : {}),
      });
      if (interruptedBy !== undefined) return signalExitCode(interruptedBy);
      return failure ? failure.exitCode : exitCodes.ok;
    }
    if (interruptedBy !== undefined) {
      process.stderr.write(interruptedSummary(interruptedBy, report, outcomes));
      return signalExitCode(interruptedBy);
    }
    if (failure) throw failure;
    print(`\nDone: ${actions.length} applied, verified: the host matches the file.\n`);
    return exitCodes.ok;
  } finally {
    if (!ledgerTaken) await (await earlyLedger).ledger?.close();
    lock.release();
  }
}

/**
 * A run with nothing to change still closes what earlier runs left open (settled records)
 * and signs records a killed run left unsigned.
 */
async function settleWithoutChanges(
  ledger: LedgerWriter,
  run: string,
  settlements: readonly Settlement[],
): Promise<void> {
  await recordSettlements(ledger, run, settlements);
  if (settlements.length > 0) await ledger.checkpoint();
  else await ledger.checkpointIfUnsigned();
}

function renderSettlements(settlements: readonly Settlement[]): string {
  if (settlements.length === 0) return "";
  const lines = settlements.map(
    ({ intent, how }) => `  settle ${intent.action} ${intent.plugin} ${intent.target}: ${how}`,
  );
  return `\nEarlier actions without an outcome, settled by this run's read of the host:\n${lines.join("\n")}\n`;
}

function settledJson(settlements: readonly Settlement[]): unknown[] {
  return settlements.map(({ intent, how }) => ({
    settles: intent.seq,
    run: intent.run,
    kind: intent.action,
    plugin: intent.plugin,
    id: intent.target,
    how,
  }));
}

/** What an interrupted run did and did not do, for stderr. */
function interruptedSummary(
  signal: NodeJS.Signals,
  report: ApplyReport,
  outcomes: readonly { action: Action; outcome: StepOutcome }[],
): string {
  const done = outcomes.filter(({ outcome }) => outcome.status === "ok");
  const notDone = outcomes.filter(({ outcome }) => outcome.status !== "ok");
  const line = ({ action, outcome }: { action: Action; outcome: StepOutcome }) =>
    `  ${outcome.status === "cancelled" ? "not run" : outcome.status} ${action.kind} ${action.plugin} ${action.id}`;
  return [
    `\nInterrupted by ${signal} (run ${report.run}): ${done.length} applied, ${report.failed} failed, ${report.unknown} unknown, ${report.cancelled + report.skipped} not run; the ledger records each and is signed.`,
    ...(done.length > 0 ? ["Done:", ...done.map(line)] : []),
    ...(notDone.length > 0 ? ["Not done:", ...notDone.map(line)] : []),
    "Run op apply again to finish.\n",
  ].join("\n");
}

/** A failed step's error with its hint (the hint says what to change), or why it was skipped. */
function whyNot(outcome: StepOutcome): string {
  if (outcome.status === "skipped")
    return `skipped: needs ${outcome.because}, which did not succeed`;
  if (outcome.status !== "failed") return "ok";
  const { error } = outcome;
  return error instanceof OpError && error.hint
    ? `${error.message} (${error.hint})`
    : messageOf(error);
}

/** Why an apply did not succeed, if it did not: failed or skipped steps, or remaining drift. */
function applyFailure(
  report: ApplyReport,
  outcomes: readonly { action: Action; outcome: StepOutcome }[],
  remaining: readonly Action[] | undefined,
): OpError | undefined {
  if (report.failed > 0 || report.skipped > 0 || report.unknown > 0) {
    const unknown = report.unknown > 0 ? `, ${report.unknown} with an unknown outcome` : "";
    return new OpError(
      "apply-failed",
      `${report.failed} action(s) failed, ${report.skipped} skipped${unknown} (run ${report.run})`,
      {
        details: outcomes
          .filter(({ outcome }) => outcome.status !== "ok")
          .map(
            ({ action, outcome }) =>
              `${action.kind} ${action.plugin} ${action.id}: ${whyNot(outcome)}`,
          ),
        hint: "the ledger holds a failed (or unknown) record for each; fix the cause and run op apply again (it settles the unknown ones from what it reads)",
      },
    );
  }
  return remaining && remaining.length > 0 ? notConverged(remaining) : undefined;
}

export async function queryCommand(
  options: GlobalOptions & { plugin?: string; all?: boolean },
  registry: PluginRegistry,
): Promise<number> {
  const only = options.plugin === undefined ? undefined : requirePlugin(options.plugin, registry);
  const selected: readonly Plugin[] = await registry.load(only === undefined ? undefined : [only]);
  const ctx = createCtx({ ...cachePaths(options), verbose: options.verbose ?? false });
  const results = await Promise.all(
    selected.map(async (plugin) => {
      try {
        return { plugin, live: await plugin.query(ctx) };
      } catch (error) {
        const wrapped = withContext(error, { plugin: plugin.name, phase: "query" });
        // Asked for everything, a host without Incus (say) still shows the rest.
        if (
          only === undefined &&
          wrapped instanceof OpError &&
          unavailableCodes.has(wrapped.code)
        ) {
          return { plugin, unavailable: wrapped };
        }
        throw wrapped;
      }
    }),
  );
  if (options.json) {
    printJson(
      Object.fromEntries(
        results.map((r) => [
          r.plugin.name,
          "live" in r
            ? (r.plugin.queryJson?.(r.live, { all: options.all ?? false }) ?? r.live)
            : { unavailable: r.unavailable.toJSON() },
        ]),
      ),
    );
  } else {
    print(
      results
        .map((r) =>
          "live" in r
            ? renderReport(r.plugin.name, r.plugin.report(r.live))
            : `${r.plugin.name}\nunavailable: ${r.unavailable.message}${r.unavailable.hint ? ` (${r.unavailable.hint})` : ""}\n`,
        )
        .join("\n"),
    );
  }
  return exitCodes.ok;
}

/** Errors that mean "this host does not have that part", not "something went wrong". */
const unavailableCodes = new Set(["tool-missing", "daemon-unavailable"]);

/** The canonical name of a plugin given on the command line. */
function requirePlugin(name: string, registry: PluginRegistry): string {
  const entry = registry.named(name);
  if (!entry) {
    throw new OpError("usage", `unknown plugin "${name}"`, {
      hint: `op knows: ${registry.manifests.map((p) => p.name).join(", ")}`,
    });
  }
  return entry.name;
}

/** The ledger (LevelDB and Ed25519: ~70 ms to load) is loaded only by runs that use it. */
export async function openLedger(where: Paths, create: boolean): Promise<Ledger> {
  const { Ledger } = await import("../ledger/index.js");
  return Ledger.open(where.ledgerDir, { keyFile: where.keyFile, create });
}

/** A ledger opened while the host is read, or why it could not be. */
interface EarlyLedger {
  ledger?: Ledger;
  error?: unknown;
}

/**
 * The ledger when one is there (a file in its directory, or its checkpoint log), opened early.
 * Never rejects: the error is the run's to report once the file is known to be valid, and it
 * is reported even when nothing changes (a damaged ledger exits 3 on a converged host too).
 */
async function openExistingLedger(where: Paths): Promise<EarlyLedger> {
  if (!ledgerIsThere(where.ledgerDir)) return {};
  try {
    return { ledger: await openLedger(where, true) };
  } catch (error) {
    return { error };
  }
}

function ledgerIsThere(dir: string): boolean {
  try {
    if (readdirSync(dir).length > 0) return true;
  } catch {
    // no directory: perhaps only its checkpoint log is left
  }
  return existsSync(checkpointLogPath(dir));
}

export async function withLedger<T>(
  options: GlobalOptions,
  work: (ledger: Ledger) => Promise<T>,
): Promise<T> {
  const where = paths(options);
  // Reading commands never create a ledger or a key: a wrong path should say so.
  const ledger = await openLedger(where, false);
  try {
    return await work(ledger);
  } finally {
    await ledger.close();
  }
}

export async function ledgerLogCommand(
  options: GlobalOptions & { plugin?: string; since?: string; limit?: number },
): Promise<number> {
  const since = options.since === undefined ? undefined : parseSince(options.since);
  return withLedger(options, async (ledger) => {
    const filter = {
      ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
      ...(since === undefined ? {} : { since }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    };
    // --limit keeps the newest records; they are still printed oldest first.
    const records = [];
    for await (const record of ledger.records({
      ...filter,
      reverse: options.limit !== undefined,
    })) {
      records.push(record);
    }
    if (options.limit !== undefined) records.reverse();
    for (const record of records) {
      if (options.json) {
        print(`${JSON.stringify(record)}\n`);
        continue;
      }
      print(`${renderRecord(record)}\n`);
    }
    return exitCodes.ok;
  });
}

/** `--since` takes a date/time (ISO 8601) or an age such as 30m, 12h, 7d. */
export function parseSince(text: string): Date {
  const age = /^(\d+)([smhd])$/.exec(text);
  if (age) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[age[2] as "s" | "m" | "h" | "d"];
    return new Date(Date.now() - Number(age[1]) * unit * 1000);
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new OpError("usage", `--since ${text}: not a date or an age`, {
      hint: "give an ISO date such as 2026-11-01 or 2026-11-01T12:00Z, or an age such as 30m, 12h, 7d",
    });
  }
  return date;
}

export async function ledgerShowCommand(seqText: string, options: GlobalOptions): Promise<number> {
  const seq = Number(seqText);
  if (!Number.isInteger(seq) || seq < 1) {
    throw new OpError(
      "usage",
      `ledger show ${seqText}: SEQ must be a record number (1, 2, 3, ...)`,
    );
  }
  return withLedger(options, async (ledger) => {
    const record = await ledger.show(seq);
    if (!record) {
      throw new OpError("not-found", `the ledger has no record ${seq}`, {
        hint: `it has ${await ledger.size()} records, numbered from 1`,
      });
    }
    printJson(record);
    return exitCodes.ok;
  });
}

export async function ledgerVerifyCommand(
  options: GlobalOptions & { trusted?: string },
): Promise<number> {
  const trusted = options.trusted === undefined ? undefined : await readTrusted(options.trusted);
  return withLedger(options, async (ledger) => {
    const report = await ledger.verify(trusted === undefined ? {} : { trusted });
    for (const warning of report.warnings ?? []) process.stderr.write(`op: warning: ${warning}\n`);
    if (options.json) printJson(report);
    else if (report.ok) {
      const checkpoint = report.checkpoint
        ? `; checkpoint at ${report.checkpoint.size} verified`
        : "";
      print(
        `ledger OK: ${report.size} records, chain intact${checkpoint}${trusted ? "; matches the trusted checkpoint" : ""}\n`,
      );
    } else {
      print(`ledger BAD: ${report.problem}\n`);
    }
    return report.ok ? exitCodes.ok : exitCodes.ledgerBad;
  });
}

async function readTrusted(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new OpError("usage", `--trusted ${path}: cannot read (${messageOf(error)})`, {
      hint: "pass a file saved earlier from `op ledger checkpoint`",
    });
  }
}

export async function ledgerExportCommand(options: GlobalOptions): Promise<number> {
  return withLedger(options, async (ledger) => {
    for await (const line of ledger.exportAll()) print(`${line}\n`);
    return exitCodes.ok;
  });
}

export async function ledgerCheckpointCommand(options: GlobalOptions): Promise<number> {
  return withLedger(options, async (ledger) => {
    const checkpoint = await ledger.latestCheckpoint();
    if (checkpoint === undefined) {
      throw new OpError("not-found", "the ledger has no checkpoint yet", {
        hint: "one is written after every op apply that changed something",
      });
    }
    if (options.json) {
      const { parseCheckpoint } = await import("../ledger/index.js");
      const { origin, size, root, time, key } = parseCheckpoint(checkpoint);
      printJson({ origin, size, root, time, key, text: checkpoint });
    } else {
      print(checkpoint.endsWith("\n") ? checkpoint : `${checkpoint}\n`);
    }
    return exitCodes.ok;
  });
}
