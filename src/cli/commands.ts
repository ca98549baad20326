/**
 * What each command does. program.ts parses the command line; this file runs the work and
 * returns the exit code. Heavy modules are imported here, never on the `--version` path.
 */
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { createCtx, type Paths, resolvePaths } from "../context.js";
import { messageOf, type Settlement } from "../engine/reconcile.js";
import {
  type ActionOutcome,
  type RunDeps,
  type RunEvent,
  type RunMode,
  type RunReport,
  type RunRequest,
  reconcile,
} from "../engine/run.js";
import { OpError, withContext } from "../errors.js";
import type { Settings } from "../host/settings.js";
import { blobDirectory, fileBlobStore } from "../ledger/blobs.js";
import { checkpointLogPath } from "../ledger/checkpoint-log.js";
import type { Ledger } from "../ledger/index.js";
import { acquireLock } from "../lock.js";
import {
  type Action,
  type InventoryRequest,
  type Plugin,
  type Problem,
  problemLine,
  unreachable,
} from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import { type CheckOptions, checkState as checkStateFile } from "../state/check.js";
import { readStateFile } from "../state/load.js";
import { pluginScope } from "../state/sections.js";
import type { StateDocument } from "../state/validate.js";
import { actionsJson, jsonDocument, printDocument } from "./contract.js";
import { type EventSink, emitRunEvent, eventsToStdout, openEvents, runFinished } from "./events.js";
import {
  exitOnSignalOutsideRuns,
  type Interrupt,
  signalExitCode,
  watchInterrupts,
} from "./interrupt.js";
import { renderRecord } from "./ledger-commands.js";
import { errorJson, renderOutcome, renderPlan, renderReport } from "./output.js";

export interface GlobalOptions {
  /** The environment's defaults, read when the command started (src/host/settings.ts). */
  settings: Settings;
  json?: boolean;
  ledger?: string;
  ledgerKey?: string;
  verbose?: boolean;
  /** `--events[=FILE]` of plan and apply: "-" for stdout (src/cli/events.ts). */
  events?: string;
  /** Where this command's events go, once opened. */
  eventSink?: EventSink;
}

/** Events on stdout: the command prints nothing else there (the events say it all). */
function quiet(options: GlobalOptions): boolean {
  return options.events === eventsToStdout;
}

/** Opens `--events` for a plan or apply of `file` and says the run started. */
function startEvents<O extends GlobalOptions>(options: O, mode: RunMode, file: string): O {
  if (options.events === undefined) return options;
  if (quiet(options) && options.json)
    throw new OpError("usage", "--events on stdout and --json cannot share stdout", {
      hint: "write the events to a file (--events=FILE), or leave --json out: the events carry the plan and the result",
    });
  notTheStateFile(options.events, "--events", file);
  const eventSink = openEvents(options.events);
  eventSink.emit("run_started", { mode, file });
  return { ...options, eventSink };
}

/** An output file op writes must not be the state file it reads (it would be overwritten). */
function notTheStateFile(out: string, option: string, file: string): void {
  if (out === "-" || file === "-" || resolve(out) !== resolve(file)) return;
  throw new OpError("usage", `${option} ${out} is the state file itself`, {
    hint: "write it to another file; nothing was changed",
  });
}

/** The last event of a plan or apply (if events are on), then the sink closed. */
async function finishEvents(
  options: GlobalOptions,
  result: { report?: RunReport | undefined; exitCode: number; error?: unknown },
): Promise<void> {
  const sink = options.eventSink;
  if (sink === undefined) return;
  const { report, exitCode, error } = result;
  const failure = error instanceof OpError ? error : report?.error;
  runFinished(sink, {
    run: report?.mode === "plan" || report?.actions.length === 0 ? null : (report?.run ?? null),
    ledgerHead: await ledgerHead(paths(options)).catch(() => null),
    converged: report?.converged ?? false,
    exitCode,
    ...(failure === undefined ? {} : { error: failure }),
  });
  sink.close();
}

export const exitCodes = { ok: 0, failure: 1, drift: 2, ledgerBad: 3 } as const;

export function paths(options: GlobalOptions): Paths {
  return resolvePaths(options.settings, {
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

interface LoadedState {
  document: StateDocument;
  /** The plugins the file has sections for, in create order. */
  plugins: Plugin[];
}

/** Reads and checks a state file: schemas, then each plugin's own checks; touches nothing. */
async function loadState(
  file: string,
  registry: PluginRegistry,
  options: CheckOptions,
): Promise<LoadedState> {
  return checkState(await readStateFile(file), file, registry, options);
}

function checkState(
  parsed: unknown,
  file: string,
  registry: PluginRegistry,
  options: CheckOptions,
): Promise<LoadedState> {
  return checkStateFile(parsed, file, registry, printWarning, options);
}

function printWarning(warning: Problem): void {
  process.stderr.write(`warning: ${problemLine(warning)}\n`);
}

export async function validateCommand(
  file: string,
  options: GlobalOptions,
  registry: PluginRegistry,
): Promise<number> {
  // Checks by tools run in isolation too (nft's parser); plan and apply have them from prepare.
  const tools = createCtx({
    settings: options.settings,
    ...cachePaths(options),
    verbose: options.verbose ?? false,
  });
  const { document } = await loadState(file, registry, { tools });
  const names = [...document.sections.keys()];
  if (options.json) printDocument({ file, valid: true, plugins: names });
  else print(`${file} is valid (plugins: ${names.join(", ") || "none"})\n`);
  return exitCodes.ok;
}

/** `op schema`: the whole file's schema, the plugin schemas bundled in (scripts/gen.mjs). */
export async function schemaCommand(): Promise<number> {
  // Loaded only here: the bundle is large and no other command needs it.
  const { bundledSchema } = await import("../generated/bundle.js");
  print(`${JSON.stringify(bundledSchema, null, 2)}\n`);
  return exitCodes.ok;
}

/** `--plugin`: the run reads and plans only these plugins' sections (the file is checked whole). */
function scopeOf(options: { plugin?: string[] }, registry: PluginRegistry): { plugins?: string[] } {
  return options.plugin === undefined ? {} : { plugins: pluginScope(options.plugin, registry) };
}

export interface PlanOptions extends GlobalOptions {
  allowRestart?: boolean;
  adopt?: boolean;
  plugin?: string[];
  /** `--out PLANFILE`: the plan is saved for `op apply PLANFILE` (src/cli/planfile.ts). */
  out?: string;
  /** `--detailed-exitcode`: exit 2 when there are changes, as terraform plan does. */
  detailedExitcode?: boolean;
}

export async function planCommand(
  file: string,
  given: PlanOptions,
  registry: PluginRegistry,
): Promise<number> {
  if (given.out !== undefined) notTheStateFile(given.out, "--out", file);
  const options = startEvents(given, "plan", file);
  let report: RunReport | undefined;
  try {
    report = await planAndSave(file, options, registry);
  } catch (error) {
    await finishEvents(options, {
      exitCode: error instanceof OpError ? error.exitCode : 70,
      error,
    });
    throw error;
  }
  const exitCode =
    options.detailedExitcode === true && report.actions.length > 0 ? exitCodes.drift : exitCodes.ok;
  await finishEvents(options, { report, exitCode });
  return exitCode;
}

async function planAndSave(
  file: string,
  options: PlanOptions,
  registry: PluginRegistry,
): Promise<RunReport> {
  const scope = scopeOf(options, registry);
  const parsed = await readStateFile(file);
  const deps = runDeps(file, options, registry, {
    allowUplink: false,
    allowRestart: options.allowRestart ?? false,
    adopt: options.adopt ?? false,
  });
  const report = await reconcile({ mode: "plan", file, parsed, ...scope }, deps);
  showPlan(report, options);
  if (options.eventSink)
    emitRunEvent(options.eventSink, { type: "planned", actions: report.actions, settlements: [] });
  if (options.out !== undefined) {
    const { writePlanFile } = await import("./planfile.js");
    writePlanFile(options.out, {
      file,
      state: parsed,
      options: {
        allow_restart: options.allowRestart ?? false,
        adopt: options.adopt ?? false,
        plugins: scope.plugins ?? null,
      },
      actions: report.actions,
    });
    if (!options.json && !quiet(options))
      print(`\nSaved the plan to ${options.out}: op apply ${options.out} applies exactly it.\n`);
  }
  return report;
}

/** Relative paths in a state file are taken from its directory (stdin: the current one). */
function stateDirOf(file: string): { stateDir?: string } {
  return file === "-" ? {} : { stateDir: dirname(resolve(file)) };
}

/** What the engine needs of the outside world for one run of `file`. */
export function runDeps(
  file: string,
  options: ApplyOptions,
  registry: PluginRegistry,
  run: { allowUplink: boolean; allowRestart?: boolean; adopt?: boolean },
): RunDeps {
  const where = paths(options);
  return {
    registry,
    ctx: () =>
      createCtx({
        // --ledger moves the image store too: a plugin finds its kept files beside the ledger.
        settings: { ...options.settings, ledgerDir: where.ledgerDir },
        cacheDir: where.cacheDir,
        cacheKeyFile: where.cacheKeyFile,
        verbose: options.verbose ?? false,
        run: { ...run, ...stateDirOf(file) },
      }),
    checkFile: (parsed) => checkState(parsed, file, registry, { settings: options.settings }),
    ledger: {
      exists: () => ledgerIsThere(where.ledgerDir),
      open: () => openLedger(where, true),
    },
    lock: () => acquireLock(where.lockFile, { timeoutSeconds: options.lockTimeout ?? 0 }),
    // Every apply keeps the pre-images of what it changes: op rollback undoes it from them.
    images: fileBlobStore(blobDirectory(where.ledgerDir)),
  };
}

/** Prints a plan (`op plan`, `op apply --check`). */
function showPlan(report: RunReport, options: GlobalOptions, extra: Record<string, unknown> = {}) {
  const { file, actions, summary } = report;
  if (quiet(options)) return;
  if (options.json) printDocument({ file, ...extra, summary, actions: actionsJson(actions) });
  else print(renderPlan(actions));
}

export interface ApplyOptions extends GlobalOptions {
  check?: boolean;
  lockTimeout?: number;
  concurrency?: number;
  allowUplink?: boolean;
  allowRestart?: boolean;
  /** `--adopt`: objects the file names that op did not create are adopted (RunOptions.adopt). */
  adopt?: boolean;
  /** --plugin, given once or more: only these plugins' sections are applied. */
  plugin?: string[];
  /** Prometheus textfile metrics written after the run (src/status/metrics.ts). */
  metricsFile?: string;
  /** `--confirm`: seconds until the run is rolled back unless `op confirm` (src/cli/confirm.ts). */
  confirm?: number;
  /** `--rollback-on-failure`: a run that fails part-way or does not converge is undone. */
  rollbackOnFailure?: boolean;
}

/** How long the actions in flight may take to finish after a first SIGINT/SIGTERM. */
export const interruptGraceSeconds = 30;

export async function applyCommand(
  file: string,
  given: ApplyOptions,
  registry: PluginRegistry,
): Promise<number> {
  const stopOutsideRuns = exitOnSignalOutsideRuns((line) => process.stderr.write(`${line}\n`));
  try {
    return await applyCommandBody(file, given, registry);
  } finally {
    stopOutsideRuns();
  }
}

async function applyCommandBody(
  file: string,
  given: ApplyOptions,
  registry: PluginRegistry,
): Promise<number> {
  // A metrics file that cannot be written is refused before the run, not after it.
  if (given.metricsFile !== undefined) {
    const { checkMetricsPath } = await import("../status/metrics.js");
    checkMetricsPath(given.metricsFile);
  }
  const options = startEvents(given, given.check ? "check" : "apply", file);
  const started = Date.now();
  let report: RunReport | undefined;
  const done = (finished: RunReport) => {
    report = finished;
  };
  const mode = options.check ? "check" : "apply";
  const note = (exit: number, error?: unknown) =>
    noteRun(file, options, { mode, started, exit, report, error });
  let exit: number;
  try {
    // A run whose confirmation deadline passed is rolled back before anything else.
    const confirm = await import("./confirm.js");
    await confirm.rollBackExpired(options, registry);
    const turn = options.confirm === undefined ? undefined : await confirm.confirmTurn(options);
    try {
      if (turn !== undefined) confirm.refuseIfPending(options);
      exit = await applyOrCheck(file, options, registry, done).catch(async (error: unknown) => {
        // --rollback-on-failure: a run that failed part-way (or did not converge) is undone.
        if (options.rollbackOnFailure) await undoFailedRun(report, options, registry);
        throw error;
      });
      if (options.rollbackOnFailure && exit !== exitCodes.ok)
        await undoFailedRun(report, options, registry);
      if (turn !== undefined && exit === exitCodes.ok) await armDeadline(report, options);
    } finally {
      turn?.release();
    }
  } catch (error) {
    const exitCode = error instanceof OpError ? error.exitCode : 70;
    await note(exitCode, error);
    await finishEvents(options, { report, exitCode, error });
    throw error;
  }
  await note(exit);
  await finishEvents(options, { report, exitCode: exit });
  return exit;
}

/** Undoes a run that changed the host and then failed, from its pre-image (src/cli/rollback.ts). */
async function undoFailedRun(
  report: RunReport | undefined,
  options: ApplyOptions,
  registry: PluginRegistry,
): Promise<void> {
  if (report?.run === undefined || report.error === undefined || report.outcomes.length === 0)
    return;
  process.stderr.write(
    `op: run ${report.run} did not succeed (${report.error.message}); undoing what it did (--rollback-on-failure)\n`,
  );
  const { rollback } = await import("./rollback.js");
  // Forced: a run that failed has no post-image to compare with, and its own changes are
  // exactly what is to be undone.
  try {
    await rollback(report.run, { ...options, force: true }, registry, () => {});
  } catch (error) {
    // The run's own failure stays what op exits with; the undo's is told beside it.
    process.stderr.write(`op: the undo of run ${report.run} failed too: ${messageOf(error)}\n`);
  }
}

/** `--confirm`: an apply that changed the host is rolled back unless confirmed in time. */
async function armDeadline(report: RunReport | undefined, options: ApplyOptions): Promise<void> {
  if (report?.run === undefined || report.actions.length === 0) {
    process.stderr.write("op: nothing was changed, so there is nothing to confirm\n");
    return;
  }
  const { armConfirm } = await import("./confirm.js");
  const deadline = await armConfirm(report.run, options.confirm as number, options);
  process.stderr.write(
    `op: run ${report.run} is rolled back at ${deadline.toISOString()} unless confirmed: op confirm ${report.run.slice(0, 8)}\n`,
  );
}

/**
 * Adds the run to the status document (and the metrics file). A status that cannot be
 * written is said on stderr and does not change the run's exit code: the host was changed
 * (or checked) and the ledger says so either way. `op watch` notes each of its runs too.
 */
export async function noteRun(
  file: string,
  options: ApplyOptions,
  run: { mode: RunMode; started: number; exit: number; report?: RunReport; error?: unknown },
): Promise<void> {
  try {
    const { recordRun, runSummary } = await import("../status/index.js");
    const ledgerRecords =
      options.metricsFile === undefined ? undefined : await ledgerSize(paths(options));
    await recordRun(options.settings, runSummary({ ...run, file }), {
      ...(options.metricsFile === undefined ? {} : { metricsFile: options.metricsFile }),
      ...(ledgerRecords === undefined ? {} : { ledgerRecords }),
    });
  } catch (error) {
    process.stderr.write(`op: warning: the run's status was not recorded: ${messageOf(error)}\n`);
  }
}

/** Reads the ledger through a view (no wait on a run that has it open); none: undefined. */
async function viewLedger<T>(
  where: Paths,
  read: (ledger: Ledger) => Promise<T>,
): Promise<T | undefined> {
  if (!ledgerIsThere(where.ledgerDir)) return undefined;
  const ledgers = await import("../ledger/index.js");
  const ledger = await ledgers.Ledger.open(where.ledgerDir, {
    keyFile: where.keyFile,
    create: false,
    view: true,
  });
  try {
    return await read(ledger);
  } finally {
    await ledger.close();
  }
}

/** The ledger's size; undefined when there is none. */
export function ledgerSize(where: Paths): Promise<number | undefined> {
  return viewLedger(where, (ledger) => ledger.size());
}

/**
 * The ledger's head hash as a run left it, for an apply's `--json`; null when there is no
 * ledger yet (a first run with nothing to change).
 */
export async function ledgerHead(where: Paths): Promise<string | null> {
  return (await viewLedger(where, async (ledger) => (await ledger.head()).hash)) ?? null;
}

async function applyOrCheck(
  file: string,
  options: ApplyOptions,
  registry: PluginRegistry,
  done: (report: RunReport) => void,
): Promise<number> {
  const planfile = await import("./planfile.js");
  if (planfile.looksLikePlanFile(file)) return applyPlanFile(file, options, registry, done);
  const scope = scopeOf(options, registry);
  const parsed = await readStateFile(file);
  // A plan file whose fields a tool reordered is still one.
  if ((parsed as { kind?: unknown } | null)?.kind === planfile.planKind)
    return applyPlanFile(file, options, registry, done);
  const deps = runDeps(file, options, registry, {
    allowUplink: options.allowUplink ?? false,
    allowRestart: options.allowRestart ?? false,
    adopt: options.adopt ?? false,
  });

  if (options.check) {
    const report = await reconcile(
      { mode: "check", file, parsed, recordDrift: true, ...scope },
      deps,
    );
    done(report);
    if (options.eventSink)
      emitRunEvent(options.eventSink, {
        type: "planned",
        actions: report.actions,
        settlements: [],
      });
    const drift = report.actions.length > 0;
    showPlan(report, options, { drift, ...(report.run === undefined ? {} : { run: report.run }) });
    if (!options.json && !quiet(options) && report.run !== undefined) {
      print(
        `Drift recorded in the ledger: ${report.actions.length} drift record(s), run ${report.run}.\n`,
      );
    }
    return drift ? exitCodes.drift : exitCodes.ok;
  }

  return applyParsed({ file, parsed, ...scope }, options, deps, done);
}

/**
 * `op apply PLANFILE`: the plan's state, with the plan's leave, applied only if planning it
 * again under the lock gives the plan's actions (src/cli/planfile.ts).
 */
async function applyPlanFile(
  path: string,
  options: ApplyOptions,
  registry: PluginRegistry,
  done: (report: RunReport) => void,
): Promise<number> {
  const given = [
    options.check && "--check",
    options.plugin !== undefined && "--plugin",
    options.allowRestart && "--allow-restart",
    options.adopt && "--adopt",
  ].filter(Boolean);
  if (given.length > 0)
    throw new OpError("usage", `${path} is a plan file: ${given.join(", ")} cannot change it`, {
      hint: "the plan applies with the options it was made with; make a new one with op plan",
    });
  const { expectPlan, readPlanFile } = await import("./planfile.js");
  const plan = readPlanFile(path);
  const { state_file: file, options: made } = plan;
  const deps = runDeps(file, options, registry, {
    allowUplink: options.allowUplink ?? false,
    allowRestart: made.allow_restart,
    adopt: made.adopt,
  });
  const request = {
    file,
    parsed: plan.state,
    ...(made.plugins === null ? {} : { plugins: made.plugins }),
    expect: (actions: readonly Action[]) => expectPlan(plan, path, actions),
  };
  return applyParsed(request, options, deps, done);
}

/**
 * One apply of a parsed document, shown as it goes (op apply, and op rollback with the
 * pre-image as its file); returns the exit code.
 */
export async function applyParsed(
  request: Pick<RunRequest, "file" | "parsed" | "plugins" | "rollbackOf" | "expect">,
  options: ApplyOptions,
  deps: RunDeps,
  done: (report: RunReport) => void,
): Promise<number> {
  const interrupt = watchInterrupts({
    graceSeconds: interruptGraceSeconds,
    say: (line) => process.stderr.write(`${line}\n`),
    exitNow: (code) => process.exit(code),
  });
  try {
    const report = await reconcile(
      {
        mode: "apply",
        ...request,
        signal: interrupt.signal,
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      },
      { ...deps, onEvent: (event) => showProgress(event, options, interrupt) },
    );
    done(report);
    return await renderApply(report, options, interrupt.received);
  } finally {
    interrupt.dispose();
  }
}

/** An apply's progress as it happens: earlier runs left open, the plan, each outcome. */
function showProgress(event: RunEvent, options: ApplyOptions, interrupt: Interrupt): void {
  if (options.eventSink) emitRunEvent(options.eventSink, event);
  if (event.type === "applying") interrupt.changing();
  if (quiet(options)) return;
  switch (event.type) {
    case "pending":
      for (const line of event.lines) process.stderr.write(`op: ${line}\n`);
      return;
    case "planned":
      if (!options.json) print(renderPlan(event.actions) + renderSettlements(event.settlements));
      return;
    case "applying":
      if (!options.json) print("\nApplying:\n");
      return;
    case "outcome":
      if (!options.json) print(`${renderOutcome(event)}\n`);
      return;
    case "started":
    case "verified":
      // The outcomes and the summary say as much for people; --events streams these.
      return;
    default:
      unreachable(event);
  }
}

/** An apply's result, as text or one JSON document; returns the exit code. */
async function renderApply(
  report: RunReport,
  options: ApplyOptions,
  interruptedBy: NodeJS.Signals | undefined,
): Promise<number> {
  const { file, actions, summary, settlements, outcomes } = report;
  if (quiet(options)) return quietExit(report, interruptedBy);
  if (actions.length === 0) {
    if (options.json)
      printDocument({
        file,
        run: null,
        ledger_head: await ledgerHead(paths(options)),
        summary,
        actions: [],
        outcomes: [],
        settled: settledJson(settlements),
        converged: true,
      });
    return exitCodes.ok;
  }
  const failure = report.error;
  if (options.json) {
    // One document, whatever happened: the error (if any) is part of it.
    printDocument({
      file,
      run: report.run ?? null,
      ledger_head: await ledgerHead(paths(options)),
      summary,
      actions: actionsJson(actions),
      settled: settledJson(settlements),
      outcomes: outcomes.map(({ action, outcome, needed }) => ({
        kind: action.kind,
        plugin: action.plugin,
        resource: action.resource,
        id: action.id,
        status: outcome.status,
        ...(outcome.status === "failed" || outcome.status === "unknown"
          ? { error: messageOf(outcome.error) }
          : {}),
        ...(outcome.status === "skipped" ? { because: neededJson(needed, outcome.because) } : {}),
        ...(outcome.status === "held" ? { held: outcome.reason } : {}),
      })),
      converged: report.converged,
      remaining: actionsJson(report.remaining ?? []),
      ...(interruptedBy === undefined ? {} : { interrupted: interruptedBy }),
      ...(failure ? { error: errorJson(failure) } : {}),
    });
    if (interruptedBy !== undefined) return signalExitCode(interruptedBy);
    return failure ? failure.exitCode : exitCodes.ok;
  }
  if (interruptedBy !== undefined) {
    process.stderr.write(interruptedSummary(interruptedBy, report));
    return signalExitCode(interruptedBy);
  }
  if (failure) throw failure;
  print(`\nDone: ${actions.length} applied, verified: the host matches the file.\n`);
  return exitCodes.ok;
}

/** The exit code of an apply whose events went to stdout (they carry the result). */
function quietExit(report: RunReport, interruptedBy: NodeJS.Signals | undefined): number {
  if (interruptedBy !== undefined) return signalExitCode(interruptedBy);
  return report.error === undefined ? exitCodes.ok : report.error.exitCode;
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

/** The action a skipped one needed, as `--json` names it (its plan key if it is not known). */
function neededJson(needed: Action | undefined, key: string): unknown {
  if (needed === undefined) return key;
  const { kind, plugin, resource, id } = needed;
  return { kind, plugin, resource, id };
}

/** What an interrupted run did and did not do, for stderr. */
function interruptedSummary(signal: NodeJS.Signals, report: RunReport): string {
  const { outcomes } = report;
  const counts = report.counts ?? { failed: 0, unknown: 0, cancelled: 0, skipped: 0 };
  const done = outcomes.filter(({ outcome }) => outcome.status === "ok");
  const notDone = outcomes.filter(({ outcome }) => outcome.status !== "ok");
  const line = ({ action, outcome }: ActionOutcome) =>
    `  ${outcome.status === "cancelled" ? "not run" : outcome.status} ${action.kind} ${action.plugin} ${action.id}`;
  return [
    `\nInterrupted by ${signal} (run ${report.run}): ${done.length} applied, ${counts.failed} failed, ${counts.unknown} unknown, ${counts.cancelled + counts.skipped} not run; the ledger records each and is signed.`,
    ...(done.length > 0 ? ["Done:", ...done.map(line)] : []),
    ...(notDone.length > 0 ? ["Not done:", ...notDone.map(line)] : []),
    "Run op apply again to finish.\n",
  ].join("\n");
}

export async function queryCommand(
  options: GlobalOptions & { plugin?: string[]; all?: boolean },
  registry: PluginRegistry,
): Promise<number> {
  const only = options.plugin?.map((name) => requirePlugin(name, registry));
  const selected: readonly Plugin[] = await registry.load(only);
  const ctx = createCtx({
    settings: options.settings,
    ...cachePaths(options),
    verbose: options.verbose ?? false,
  });
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
    printDocument(
      Object.fromEntries(
        results.map((r) => [
          r.plugin.name,
          "live" in r
            ? (r.plugin.queryJson?.(r.live, { all: options.all ?? false }) ?? r.live)
            : { unavailable: errorJson(r.unavailable) },
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

export interface InventoryOptions extends GlobalOptions {
  format?: "yaml" | "ini" | "json";
  list?: boolean;
  host?: string;
}

/**
 * `op inventory FILE`: the file's hosts as an Ansible inventory, from the plugin that gives
 * one (lxc: its containers, addresses read live); `--list` and `--host` answer Ansible's
 * dynamic inventory protocol. Changes nothing.
 */
export async function inventoryCommand(
  file: string,
  options: InventoryOptions,
  registry: PluginRegistry,
): Promise<number> {
  const { document } = await loadState(file, registry, { settings: options.settings });
  const plugin = (await registry.load()).find((candidate) => candidate.inventory !== undefined);
  if (plugin?.inventory === undefined)
    throw new OpError("usage", "no plugin of this op gives an inventory");
  const ctx = createCtx({
    settings: options.settings,
    ...cachePaths(options),
    verbose: options.verbose ?? false,
  });
  const request: InventoryRequest =
    options.host !== undefined
      ? { host: options.host }
      : options.list
        ? { list: true }
        : { format: options.format ?? (options.json ? "json" : "yaml") };
  const text = await plugin.inventory(
    document.sections.get(plugin.name),
    ctx,
    { ...stateDirOf(file), sections: document.sections },
    request,
  );
  print(text);
  return exitCodes.ok;
}

/** Errors that mean "this host does not have that part", not "something went wrong". */
export const unavailableCodes: ReadonlySet<string> = new Set([
  "tool-missing",
  "daemon-unavailable",
]);

/** The canonical name of a plugin given on the command line. */
export function requirePlugin(name: string, registry: PluginRegistry): string {
  const entry = registry.named(name);
  if (!entry) {
    throw new OpError("usage", `unknown plugin "${name}"`, {
      hint: `op knows: ${registry.manifests.map((p) => p.name).join(", ")}`,
    });
  }
  return entry.name;
}

/** The ledger (LevelDB and Ed25519) is loaded only by runs that use it. */
export async function openLedger(where: Paths, create: boolean): Promise<Ledger> {
  const { Ledger } = await import("../ledger/index.js");
  return Ledger.open(where.ledgerDir, { keyFile: where.keyFile, create });
}

/** A ledger is there: a file in its directory, or its checkpoint log. */
export function ledgerIsThere(dir: string): boolean {
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
        print(`${JSON.stringify(jsonDocument(record))}\n`);
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
    printDocument(record);
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
    if (options.json) printDocument(report);
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
      printDocument({ origin, size, root, time, key, text: checkpoint });
    } else {
      print(checkpoint.endsWith("\n") ? checkpoint : `${checkpoint}\n`);
    }
    return exitCodes.ok;
  });
}
