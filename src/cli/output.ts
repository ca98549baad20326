/**
 * Everything the CLI prints for people. Colour only on a terminal and never with NO_COLOR
 * (node's styleText checks both for the stream it is given).
 */
import { styleText } from "node:util";
import { summarize } from "../engine/plan.js";
import { type ActionOutcome, neededText } from "../engine/run.js";
import { type ErrorDetail, OpError } from "../errors.js";
import {
  type Action,
  type ActionVerb,
  describeRef,
  type FieldChange,
  type LiveReport,
  verbOf,
} from "../plugin.js";

type Style = Parameters<typeof styleText>[0];

/**
 * Whether a stream takes colour is asked of it once: styleText asks at every call (the stream,
 * its terminal, the environment), a few hundred times for a plan of a few hundred changes.
 */
const colourful = new WeakMap<NodeJS.WriteStream, boolean>();

function paint(style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  let colour = colourful.get(stream);
  if (colour === undefined) {
    colour = styleText("red", "x", { stream }) !== "x";
    colourful.set(stream, colour);
  }
  return colour ? styleText(style, text, { validateStream: false }) : text;
}

const marks = {
  create: { sign: "+", style: "green" },
  modify: { sign: "~", style: "yellow" },
  adopt: { sign: "~", style: "yellow" },
  delete: { sign: "-", style: "red" },
} as const satisfies Record<ActionVerb, { sign: string; style: Style }>;

export function renderPlan(actions: readonly Action[]): string {
  if (actions.length === 0) return "No changes: the host matches the file.\n";
  const lines: string[] = [];
  for (const action of actions) {
    const verb = verbOf(action);
    const { sign, style } = marks[verb];
    lines.push(
      `${paint(style, `${sign} ${verb}`)} ${action.plugin} ${action.resource} ${paint("bold", action.id)}  (${action.reason})`,
    );
    if (action.held !== undefined) lines.push(`    ${paint("yellow", "held:")} ${action.held}`);
    if (action.kind === "modify")
      lines.push(...action.changes.map((change) => `    ${renderChange(change)}`));
  }
  lines.push("", renderSummary(actions));
  return `${lines.join("\n")}\n`;
}

export function renderSummary(actions: readonly Action[]): string {
  const s = summarize(actions);
  const held = actions.filter((action) => action.held !== undefined).length;
  // Adopts count among the modifies: one sum per kind the engine orders by.
  const adopts = actions.filter((action) => verbOf(action) === "adopt").length;
  return `Plan: ${s.create} to create, ${s.modify} to modify, ${s.delete} to delete.${adopts > 0 ? ` ${adopts} of the modifies adopt${adopts === 1 ? "s an object" : " objects"} made outside op.` : ""}${held > 0 ? ` ${held} held (not applied).` : ""}`;
}

function renderChange(change: FieldChange): string {
  const has = (key: "before" | "after") => Object.hasOwn(change, key);
  if (has("before") && has("after")) {
    return `${change.path}: ${show(change.before)} → ${show(change.after)}`;
  }
  if (has("after")) return `${paint("green", "+")} ${change.path}: ${show(change.after)}`;
  return `${paint("red", "-")} ${change.path}: ${show(change.before)}`;
}

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function renderOutcome({ action, outcome, needed }: ActionOutcome): string {
  const what = `${verbOf(action)} ${describeRef(action)}`;
  switch (outcome.status) {
    case "ok":
      return `  ${paint("green", "ok")}      ${what}`;
    case "failed":
      return `  ${paint("red", "failed")}  ${what}: ${errorLine(outcome.error)}`;
    case "skipped":
      return `  ${paint("yellow", "skipped")} ${what}: needs ${neededText(outcome.because, needed)}, which did not succeed`;
    case "unknown":
      return `  ${paint("red", "unknown")} ${what}: ${errorLine(outcome.error)}`;
    case "cancelled":
      return `  ${paint("yellow", "not run")} ${what}: the run was interrupted first`;
    case "held":
      return `  ${paint("yellow", "held")}    ${what}: ${outcome.reason}`;
  }
}

export function renderReport(title: string, report: LiveReport | LiveReport[]): string {
  if (!Array.isArray(report)) return renderTable(title, report);
  return report
    .map((section, i) =>
      renderTable(
        i === 0 && section.title === undefined ? title : `${title} ${section.title ?? ""}`.trim(),
        section,
      ),
    )
    .join("\n");
}

function renderTable(title: string, report: LiveReport): string {
  const widths = report.columns.map((column, i) =>
    Math.max(column.length, ...report.rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const body = report.rows.length === 0 ? ["(none)"] : report.rows.map(line);
  return `${paint("bold", title)}\n${paint("dim", line(report.columns))}\n${body.join("\n")}\n`;
}

function errorLine(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Longest line of an error op prints: a value echoed from the file is cut to fit. */
export const maxErrorLineLength = 400;
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it escapes
const invisible = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Problems listed under one error; a file with more says how many were left out. */
export const maxErrorDetails = 200;

/**
 * A line of an error as it may be shown: control characters written as escapes (a name with
 * a newline or a terminal escape cannot forge lines or repaint the screen), and so are the
 * invisible ones that reorder or hide text (bidi overrides, zero-width characters), and the
 * line cut to `maxErrorLineLength` (a 20 MB name is not echoed whole).
 */
export function boundedLine(text: string): string {
  const visible = text.replace(invisible, (c) =>
    c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (visible.length <= maxErrorLineLength) return visible;
  const kept = visible.slice(0, maxErrorLineLength);
  return `${kept}… (${visible.length - maxErrorLineLength} more characters)`;
}

/** The details of an error, each bounded, at most `maxErrorDetails` of them. */
function boundedDetails(details: readonly string[]): string[] {
  const shown = details.slice(0, maxErrorDetails).map(boundedLine);
  if (details.length > maxErrorDetails)
    shown.push(`… and ${details.length - maxErrorDetails} more problems`);
  return shown;
}

/** The details as `--json` gives them: objects, each bounded, at most `maxErrorDetails`. */
function boundedItems(items: readonly ErrorDetail[]): ErrorDetail[] {
  const shown = items.slice(0, maxErrorDetails).map(({ path, message, hint }) => ({
    path: boundedLine(path),
    message: boundedLine(message),
    ...(hint === undefined ? {} : { hint: boundedLine(hint) }),
  }));
  if (items.length > maxErrorDetails)
    shown.push({ path: "", message: `… and ${items.length - maxErrorDetails} more problems` });
  return shown;
}

/**
 * An OpError for `--json` (schemas/output/error.schema.json), bounded as the text form is:
 * code, message, hint, where it happened, and `details` as `{path, message}` objects.
 */
export function errorJson(error: OpError): Record<string, unknown> {
  const { plugin, phase, id } = error.context;
  return {
    code: error.code,
    message: boundedLine(error.message),
    ...(error.hint === undefined ? {} : { hint: boundedLine(error.hint) }),
    ...(plugin === undefined ? {} : { plugin }),
    ...(phase === undefined ? {} : { phase }),
    ...(id === undefined ? {} : { id: boundedLine(id) }),
    details: boundedItems(error.items),
  };
}

/** How an error is shown: an OpError as code, message, context and hint; anything else as a bug. */
export function renderError(error: unknown): string {
  const err = process.stderr;
  if (error instanceof OpError) {
    const where = [error.context.plugin, error.context.phase, error.context.id]
      .filter(Boolean)
      .join(" ");
    const lines = [
      `${paint("red", "op: error", err)} [${error.code}]${where ? ` (${boundedLine(where)})` : ""}: ${boundedLine(error.message)}`,
    ];
    lines.push(...boundedDetails(error.details).map((detail) => `  ${detail}`));
    if (error.hint) lines.push(`${paint("dim", "hint:", err)} ${boundedLine(error.hint)}`);
    return `${lines.join("\n")}\n`;
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `${paint("red", "op: internal error — this is a bug in op; please report it with this output:", err)}\n${stack.slice(0, 16 * 1024)}\n`;
}
