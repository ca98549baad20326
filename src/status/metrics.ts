/**
 * Prometheus metrics in the text exposition format, written to a file for node_exporter's
 * textfile collector (`--collector.textfile.directory`). The file is written whole: a new
 * temporary file in the same directory (named `.<pid>.<time>.tmp`, which the collector skips:
 * it reads `*.prom` only), renamed over the path, so a scrape never sees half of it.
 *
 * Everything comes from the status document (status.ts) and the ledger's size: the file says
 * what `op status` says, in numbers.
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { RunMode } from "../engine/run.js";
import { OpError } from "../errors.js";
import { writeFileAtomic } from "../files.js";
import type { StatusDocument } from "./status.js";

/** The modes that record runs (`op plan` records none). */
const modes: readonly RunMode[] = ["check", "apply"];

export interface MetricsInput {
  status: StatusDocument;
  /** The ledger's size; unknown (no ledger, unreadable): the metric is left out. */
  ledgerRecords?: number;
}

interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  samples: { labels?: Record<string, string>; value: number }[];
}

/** The text of the metrics file. */
export function renderMetrics({ status, ledgerRecords }: MetricsInput): string {
  const perMode = (counters: StatusDocument["runs"]) =>
    modes.map((mode) => ({ labels: { mode }, value: counters[mode] ?? 0 }));
  const drift = Object.entries(status.drift?.resources ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const families: Family[] = [
    {
      name: "op_runs_total",
      type: "counter",
      help: "Runs of op apply, by mode (check, apply).",
      samples: perMode(status.runs),
    },
    {
      name: "op_run_failures_total",
      type: "counter",
      help: "Runs that failed (a check's drift is not a failure), by mode.",
      samples: perMode(status.failures),
    },
    {
      name: "op_drift_resources",
      type: "gauge",
      help: "Resources differing from the state file as the last run that could tell saw them, by plugin.",
      samples: drift.map(([plugin, ids]) => ({ labels: { plugin }, value: ids.length })),
    },
    {
      name: "op_last_success_timestamp_seconds",
      type: "gauge",
      help: "When the last successful run ended (Unix time).",
      samples:
        status.lastSuccess === undefined ? [] : [{ value: Date.parse(status.lastSuccess) / 1000 }],
    },
    {
      name: "op_apply_duration_seconds",
      type: "gauge",
      help: "How long the last op apply (not plan or check) took.",
      samples: status.lastApplySeconds === undefined ? [] : [{ value: status.lastApplySeconds }],
    },
    {
      name: "op_ledger_records",
      type: "gauge",
      help: "Records in the ledger.",
      samples: ledgerRecords === undefined ? [] : [{ value: ledgerRecords }],
    },
    {
      name: "op_flapping_resources",
      type: "gauge",
      help: "Resources op watch stopped enforcing because something else keeps undoing them.",
      samples: [{ value: status.flapping.length }],
    },
  ];
  return families.map(renderFamily).join("");
}

function renderFamily({ name, type, help, samples }: Family): string {
  const lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  for (const { labels, value } of samples) {
    const pairs = Object.entries(labels ?? {}).map(
      ([key, text]) => `${key}="${escapeLabel(text)}"`,
    );
    lines.push(`${name}${pairs.length === 0 ? "" : `{${pairs.join(",")}}`} ${formatValue(value)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** A label value as the format takes it: backslash, double quote and newline escaped. */
export function escapeLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes backslash and newline only. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

/**
 * Refuses a metrics path that cannot be written whole, before the run: its directory must
 * exist (op does not create node_exporter's directory) and the path must not be a directory.
 */
export function checkMetricsPath(path: string): void {
  const full = resolve(path);
  const where = `--metrics-file ${JSON.stringify(path)}`;
  const directory = statOrUndefined(dirname(full));
  if (directory === undefined || !directory.isDirectory()) {
    throw new OpError("usage", `${where}: ${dirname(full)} is not a directory`, {
      hint: "give a file in an existing directory, such as node_exporter's textfile directory",
    });
  }
  if (statOrUndefined(full)?.isDirectory()) {
    throw new OpError("usage", `${where} is a directory`, {
      hint: "give the metrics file's own name, e.g. /var/lib/node_exporter/textfile/op.prom",
    });
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Writes the metrics file atomically (0644: node_exporter usually runs as another user). */
export function writeMetrics(path: string, input: MetricsInput): void {
  checkMetricsPath(path);
  writeFileAtomic(resolve(path), renderMetrics(input), 0o644, "metrics file");
}
