/**
 * Reading a state file: JSON (the op-dbus format) or YAML, with the line and column of a
 * syntax error. Nothing here knows about plugins; see validate.ts.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { OpError } from "../errors.js";

export async function readStateFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new OpError(
      code === "EACCES" ? "permission-denied" : "invalid-file",
      code === "ENOENT"
        ? `${path}: no such file`
        : `${path}: cannot read (${code ?? String(error)})`,
      { hint: "pass the path of a state file, e.g. `op plan state/demo.json`" },
    );
  }
  return parseStateText(text, path);
}

export async function parseStateText(text: string, path: string): Promise<unknown> {
  const extension = extname(path).toLowerCase();
  const looksLikeJson = extension === ".json" || /^\s*[{[]/.test(text);
  if (looksLikeJson && extension !== ".yaml" && extension !== ".yml") return parseJson(text, path);
  return parseYaml(text, path);
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const { line, column } = positionOf(text, message);
    throw new OpError(
      "invalid-file",
      `${path}:${line}:${column}: malformed JSON: ${stripPosition(message)}`,
      {
        hint: "fix the syntax at that line and column",
      },
    );
  }
}

async function parseYaml(text: string, path: string): Promise<unknown> {
  const { parse, YAMLParseError } = await import("yaml");
  try {
    return parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    if (!(error instanceof YAMLParseError)) throw error;
    const at = error.linePos?.[0];
    const where = at ? `${at.line}:${at.col}` : "?";
    throw new OpError(
      "invalid-file",
      `${path}:${where}: malformed YAML: ${yamlReason(error.message)}`,
      {
        hint: "fix the syntax at that line and column",
      },
    );
  }
}

/** V8 reports "(line L column C)" or only "position P"; turn either into line and column. */
function positionOf(text: string, message: string): { line: number; column: number } {
  const lineColumn = /line (\d+) column (\d+)/.exec(message);
  if (lineColumn) return { line: Number(lineColumn[1]), column: Number(lineColumn[2]) };
  const position = /position (\d+)/.exec(message);
  const offset = position ? Number(position[1]) : text.length;
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function stripPosition(message: string): string {
  return message
    .replace(/\s*in JSON at position \d+.*$/, "")
    .replace(/\s*\(line \d+ column \d+\)/, "");
}

/** The first line of yaml's message, without the position it appends (we print our own). */
function yamlReason(message: string): string {
  return (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "");
}
