/**
 * What `op status` shows: the status document (status.ts) and the ledger's head, as text for
 * people or one JSON document. Pure: the command (src/cli/status-command.ts) reads both.
 */
import type { StatusDocument } from "./status.js";

/** The ledger's head as `op status` reads it (read-only), or why it could not. */
export type LedgerHead =
  | {
      state: "ok";
      dir: string;
      seq: number;
      hash: string;
      /** The latest signed checkpoint: its time and the size it covers. */
      checkpoint?: { time: string; size: number };
    }
  | { state: "missing"; dir: string }
  | { state: "unreadable"; dir: string; message: string };

export interface StatusView {
  statusFile: string;
  /** Undefined: no run has written the status file yet. */
  status?: StatusDocument;
  ledger: LedgerHead;
}

/** `op status --json`: the document's fields, where it is, and the ledger's head. */
export function statusJson({ statusFile, status, ledger }: StatusView): Record<string, unknown> {
  return {
    statusFile,
    recorded: status !== undefined,
    lastRun: status?.lastRun ?? null,
    lastSuccess: status?.lastSuccess ?? null,
    lastDrift: status?.lastDrift ?? null,
    drift: status?.drift ?? null,
    lastError: status?.lastError ?? null,
    flapping: status?.flapping ?? [],
    runs: status?.runs ?? {},
    failures: status?.failures ?? {},
    ledger,
  };
}

/**
 * `op status` as text. `clean` makes a value from the file safe to print (a file name with a
 * terminal escape must not repaint the screen); the CLI passes its own.
 */
export function renderStatus(view: StatusView, clean: (text: string) => string = (t) => t): string {
  const { status } = view;
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${`${label}:`.padEnd(12)}${text}`);
  if (status === undefined) {
    row("status", `no run recorded yet in ${clean(view.statusFile)} (every op apply writes it)`);
  } else {
    const run = status.lastRun;
    row(
      "last run",
      run === undefined
        ? "none"
        : `${run.time}  ${run.mode} ${clean(run.file)}  exit ${run.exit}  ${run.durationSeconds.toFixed(1)} s  ${run.actions} action(s)${run.run === undefined ? "" : `  run ${clean(run.run)}`}`,
    );
    const drift = status.lastDrift;
    row(
      "last drift",
      drift === undefined
        ? "none recorded"
        : `${drift.time}  ${drift.mode} ${clean(drift.file)}${drift.run === undefined ? "" : `  run ${clean(drift.run)}`}`,
    );
    for (const [plugin, ids] of Object.entries(drift?.resources ?? {})) {
      lines.push(`  ${clean(plugin)}: ${ids.map(clean).join(", ")}`);
    }
    const now = status.drift;
    if (now !== undefined && drift !== undefined && now.time !== drift.time) {
      const left = Object.values(now.resources).reduce((n, ids) => n + ids.length, 0);
      lines.push(
        `  since then (${now.time}): ${left === 0 ? "the host matches the file" : `${left} resource(s) still differ`}`,
      );
    }
    const error = status.lastError;
    row(
      "last error",
      error === undefined
        ? "none"
        : `${error.time}  ${error.mode} ${clean(error.file)}: ${clean(error.message)}`,
    );
    row(
      "flapping",
      status.flapping.length === 0 ? "none" : `${status.flapping.length} resource(s) not enforced`,
    );
    for (const f of status.flapping) {
      lines.push(`  ${clean(f.plugin)} ${clean(f.id)} since ${f.since}: ${clean(f.why)}`);
    }
    const modes = (["apply", "check", "plan"] as const).filter(
      (mode) => (status.runs[mode] ?? 0) > 0,
    );
    row(
      "runs",
      modes.length === 0
        ? "none"
        : modes
            .map((mode) => `${mode} ${status.runs[mode]} (${status.failures[mode] ?? 0} failed)`)
            .join(", "),
    );
  }
  row("ledger", ledgerLine(view.ledger, clean));
  return `${lines.join("\n")}\n`;
}

function ledgerLine(head: LedgerHead, clean: (text: string) => string): string {
  const dir = clean(head.dir);
  switch (head.state) {
    case "missing":
      return `no ledger at ${dir} yet (op creates it on the first op apply that changes something)`;
    case "unreadable":
      return `${dir}: cannot read it: ${clean(head.message)} (op ledger verify says more)`;
    case "ok": {
      const checkpoint =
        head.checkpoint === undefined
          ? "no checkpoint yet"
          : `last checkpoint ${head.checkpoint.time} at record ${head.checkpoint.size}`;
      return `${dir}: ${head.seq} record(s), head ${head.seq} ${head.hash.slice(0, 16)}…, ${checkpoint}`;
    }
  }
}
