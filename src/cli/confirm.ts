/**
 * Commit-confirmed applies: `op apply FILE --confirm 120s` applies and verifies as usual, then
 * arms a deadline. Unless `op confirm [RUN]` comes first, the run is undone from its pre-image
 * (src/cli/rollback.ts) at the deadline.
 *
 * Where systemd is PID 1, the deadline is kept by a transient systemd timer
 * (src/cli/confirm-timer.ts); elsewhere, or when systemd-run fails, by a detached op process
 * (its own session, so it outlives the caller, its terminal and a kill -9 of the op that
 * applied). Either way a marker file beside the ledger (`<ledger>.confirm`: the run, the
 * deadline, the timer's unit or the watcher's pid) says what is pending. If the timer or the
 * watcher is gone too (a reboot), the next `op apply`, `op confirm` or `op rollback` finds the
 * marker past its deadline and rolls back first.
 *
 * Whoever acts on the marker (confirm, the watcher, a later start) first claims it by renaming
 * it away: one rename succeeds, so a run is never both confirmed and rolled back. What happened
 * last is kept in `<ledger>.confirm.last`, for `op confirm` to say when nothing is pending.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { OpError } from "../errors.js";
import { writeFileAtomic } from "../files.js";
import { acquireLock, type Lock } from "../lock.js";
import type { PluginRegistry } from "../registry.js";
import { type ApplyOptions, paths } from "./commands.js";
import { printDocument } from "./contract.js";

/** A run that awaits `op confirm`. */
export interface PendingConfirm {
  run: string;
  /** ISO time after which the run is rolled back. */
  deadline: string;
  /** The detached process that keeps the deadline. */
  watcher?: number;
  /** The transient systemd unit that keeps it instead (src/cli/confirm-timer.ts). */
  unit?: string;
}

/** What became of the last run that awaited confirmation. */
export interface ConfirmOutcome {
  run: string;
  outcome: "confirmed" | "rolled back" | "rollback failed";
  at: string;
  /** The rollback's own run. */
  by?: string;
  error?: string;
}

function markerPath(options: ApplyOptions): string {
  return `${paths(options).ledgerDir}.confirm`;
}

function lastPath(options: ApplyOptions): string {
  return `${markerPath(options)}.last`;
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new OpError("invalid-state", `cannot read ${path}: ${(error as Error).message}`, {
      hint: "it is op's confirm marker; if it was damaged by hand, remove it and check the host with op plan",
    });
  }
}

export function pendingConfirm(options: ApplyOptions): PendingConfirm | undefined {
  return readJson<PendingConfirm>(markerPath(options));
}

/**
 * The turn of one `--confirm` apply, from its check that nothing is pending until its marker
 * is written: a second one waiting for the host lock meanwhile (`--lock-timeout`) had passed
 * that check already, and would have overwritten the first one's marker, whose run was then
 * never rolled back. Held with the host lock's rules (flock, released when op dies).
 */
export function confirmTurn(options: ApplyOptions): Promise<Lock> {
  return acquireLock(`${markerPath(options)}.lock`, {
    timeoutSeconds: options.lockTimeout ?? 0,
  });
}

/** Refuses a new --confirm apply while another run awaits its confirmation. */
export function refuseIfPending(options: ApplyOptions): void {
  const pending = pendingConfirm(options);
  if (pending === undefined) return;
  throw new OpError(
    "invalid-state",
    `run ${pending.run} still awaits confirmation (deadline ${pending.deadline})`,
    { hint: `op confirm ${pending.run.slice(0, 8)} first, or let it roll back` },
  );
}

/**
 * Arms the deadline of `run`: a systemd timer or a detached watcher to run
 * `op confirm-deadline RUN DEADLINE` then, and the marker naming it, written once. The keeper
 * reads the marker only at the deadline, to claim it. Returns the deadline.
 */
export async function armConfirm(
  run: string,
  seconds: number,
  options: ApplyOptions,
): Promise<Date> {
  const deadline = new Date(Date.now() + seconds * 1000);
  const where = paths(options);
  // The ledger's paths on the command line: the keeper gets neither this command's flags nor,
  // under systemd, its environment.
  const command = [
    ...selfCommand(),
    ...["--ledger", where.ledgerDir, "--ledger-key", where.keyFile],
    "confirm-deadline",
    run,
    deadline.toISOString(),
  ];
  const pending: PendingConfirm = {
    run,
    deadline: deadline.toISOString(),
    ...(await keepDeadline(run, deadline, command, options)),
  };
  writeFileAtomic(markerPath(options), JSON.stringify(pending), 0o600, "confirm marker");
  return deadline;
}

/** Who keeps the deadline: systemd's timer where it is PID 1 and takes it, else a watcher. */
async function keepDeadline(
  run: string,
  deadline: Date,
  command: string[],
  options: ApplyOptions,
): Promise<{ unit: string } | { watcher?: number }> {
  const timer = await import("./confirm-timer.js");
  if (timer.systemdIsInit()) {
    try {
      return { unit: await timer.armTimer(run, deadline, command) };
    } catch (error) {
      process.stderr.write(
        `op: a systemd timer cannot keep the deadline (${(error as Error).message}); a detached op process keeps it instead\n`,
      );
    }
  }
  const log = openSync(`${markerPath(options)}.log`, "a", 0o600);
  try {
    const [node, ...args] = command;
    const child = spawn(node as string, args, { detached: true, stdio: ["ignore", log, log] });
    child.unref();
    return child.pid === undefined ? {} : { watcher: child.pid };
  } finally {
    closeSync(log);
  }
}

/**
 * How to start this op again: as this process was started (node's own options, which name the
 * start-up snapshot when scripts/op used one, so the watcher costs the host little), else
 * node and op's entry.
 */
function selfCommand(): string[] {
  if (process.execArgv.includes("--snapshot-blob"))
    return [process.execPath, ...process.execArgv, "--"];
  const entry = process.argv[1];
  if (entry === undefined || !existsSync(entry)) {
    throw new OpError("invalid-state", "cannot find op's own program to keep the deadline", {
      hint: "run op through scripts/op (or its installed link)",
    });
  }
  return [process.execPath, ...process.execArgv, entry];
}

/** Takes the marker for this process, if it is still there and names `run` (when given). */
function claim(options: ApplyOptions, run?: string): PendingConfirm | undefined {
  const marker = markerPath(options);
  const pending = pendingConfirm(options);
  if (pending === undefined || (run !== undefined && pending.run !== run)) return undefined;
  const claimed = `${marker}.${process.pid}.claimed`;
  try {
    renameSync(marker, claimed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const taken = readJson<PendingConfirm>(claimed);
  unlinkSync(claimed);
  return taken;
}

/** Takes `run`'s deadline away (confirmed, or undone by hand) and ends its timer or watcher. */
export async function withdraw(
  options: ApplyOptions,
  run: string,
): Promise<PendingConfirm | undefined> {
  const taken = claim(options, run);
  if (taken?.watcher !== undefined) stopWatcher(taken.watcher);
  if (taken?.unit !== undefined) {
    // The marker is claimed already: a timer left running would find nothing to do.
    const failed = await (await import("./confirm-timer.js")).stopTimer(taken.unit);
    if (failed !== undefined)
      process.stderr.write(`op: stopping ${taken.unit}.timer: ${failed} (it will do nothing)\n`);
  }
  return taken;
}

export function noteOutcome(options: ApplyOptions, outcome: ConfirmOutcome): void {
  writeFileAtomic(lastPath(options), JSON.stringify(outcome), 0o600, "confirm outcome");
}

/** `op confirm [RUN]`: keeps the pending run; says so when nothing is pending. */
export async function confirmCommand(
  runText: string | undefined,
  options: ApplyOptions,
  registry: PluginRegistry,
): Promise<number> {
  await rollBackExpired(options, registry);
  const pending = pendingConfirm(options);
  if (pending !== undefined && runText !== undefined && !pending.run.startsWith(runText)) {
    throw new OpError("usage", `run ${runText} is not the one awaiting confirmation`, {
      hint: `run ${pending.run} is; op confirm ${pending.run.slice(0, 8)}, or op confirm alone`,
    });
  }
  const taken = pending === undefined ? undefined : await withdraw(options, pending.run);
  if (taken === undefined) return nothingPending(options);
  const outcome: ConfirmOutcome = {
    run: taken.run,
    outcome: "confirmed",
    at: new Date().toISOString(),
  };
  noteOutcome(options, outcome);
  say(options, outcome, `run ${taken.run} confirmed: it will not be rolled back.\n`);
  return 0;
}

function nothingPending(options: ApplyOptions): number {
  const last = readJson<ConfirmOutcome>(lastPath(options));
  const since =
    last === undefined
      ? ""
      : ` (the last was run ${last.run}: ${last.outcome}${last.by === undefined ? "" : ` by run ${last.by}`} at ${last.at})`;
  if (options.json) printDocument({ pending: null, last });
  else process.stderr.write(`op: nothing is pending confirmation${since}\n`);
  return 1;
}

function say(options: ApplyOptions, outcome: ConfirmOutcome, text: string): void {
  if (options.json) printDocument(outcome);
  else process.stdout.write(text);
}

/** Ends the watcher op started for the deadline; one already gone is no error. */
function stopWatcher(pid: number): void {
  try {
    process.kill(pid, "SIGTERM");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** The detached watcher (`op confirm-deadline RUN`): waits for the deadline, then rolls back. */
export async function deadlineCommand(
  run: string,
  deadline: string,
  options: ApplyOptions,
  registry: PluginRegistry,
): Promise<number> {
  const at = Date.parse(deadline);
  if (Number.isNaN(at)) throw new OpError("usage", `"${deadline}" is not a deadline`);
  // Loaded now, not at the deadline: the undo starts at once when it comes.
  const rollback = await import("./rollback.js");
  const wait = at - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  // Confirmed (or undone by hand) meanwhile: the marker no longer names this run.
  if (pendingConfirm(options)?.run !== run) return 0;
  await rollBackExpired(options, registry, rollback);
  return 0;
}

/**
 * Rolls back the pending run if its deadline has passed (what every later start of op does
 * first): the run was not confirmed in time, so the host goes back to its pre-image whatever
 * was done since (as --force: a deadline that waited for leave would not protect anyone).
 */
export async function rollBackExpired(
  options: ApplyOptions,
  registry: PluginRegistry,
  loaded?: typeof import("./rollback.js"),
): Promise<void> {
  const pending = pendingConfirm(options);
  if (pending === undefined || Date.parse(pending.deadline) > Date.now()) return;
  const taken = claim(options, pending.run);
  if (taken === undefined) return;
  process.stderr.write(
    `op: run ${taken.run} was not confirmed by ${taken.deadline}: rolling it back\n`,
  );
  const { rollback } = loaded ?? (await import("./rollback.js"));
  let by: string | undefined;
  try {
    const exit = await rollback(
      taken.run,
      { ...options, force: true, lockTimeout: Math.max(options.lockTimeout ?? 0, 600) },
      registry,
      (report) => {
        by = report.run;
      },
    );
    noteOutcome(options, {
      run: taken.run,
      outcome: exit === 0 ? "rolled back" : "rollback failed",
      at: new Date().toISOString(),
      ...(by === undefined ? {} : { by }),
    });
  } catch (error) {
    noteOutcome(options, {
      run: taken.run,
      outcome: "rollback failed",
      at: new Date().toISOString(),
      error: (error as Error).message,
    });
    throw error;
  }
}
