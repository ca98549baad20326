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
  if (looksLikeJson && extension !== ".yaml" && extension !== ".yml")
    return await parseJson(text, path);
  return parseYaml(text, path);
}

async function parseJson(text: string, path: string): Promise<unknown> {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const { line, column } = await positionOf(text);
    throw new OpError(
      "invalid-file",
      `${path}:${line}:${column}: malformed JSON: ${reasonOf(message)}`,
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
    if (!(error instanceof YAMLParseError)) {
      // e.g. yaml's guard against alias bombs ("Excessive alias count") throws a ReferenceError.
      throw new OpError("invalid-file", `${path}: unreadable YAML: ${(error as Error).message}`, {
        hint: "simplify the file (anchors and aliases especially)",
      });
    }
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

/**
 * Where the first syntax error is. V8 gives a position for some errors and none for others
 * ("Unexpected token"), so a JSON scanner that reports offsets (jsonc-parser, loaded only on
 * this error path) finds it.
 */
async function positionOf(text: string): Promise<{ line: number; column: number }> {
  const { parse } = await import("jsonc-parser");
  const errors: import("jsonc-parser").ParseError[] = [];
  parse(text, errors, {
    disallowComments: true,
    allowTrailingComma: false,
    allowEmptyContent: false,
  });
  const offset = errors[0]?.offset ?? text.length;
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/** V8's reason without its position or the copy of the file text it may quote. */
function reasonOf(message: string): string {
  return message
    .replace(/, (\.\.\.)?".*" is not valid JSON$/s, "")
    .replace("token '\n'", "end of line")
    .replace(/\s*in JSON at position \d+.*$/s, "")
    .replace(/\s*\(line \d+ column \d+\)/, "");
}

/** The first line of yaml's message, without the position it appends (we print our own). */
function yamlReason(message: string): string {
  return (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "");
}
