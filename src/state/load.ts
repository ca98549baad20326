/**
 * Reading a state file: JSON (the op-dbus format) or YAML, with the line and column of a
 * syntax error. The file is opened without blocking and must be a regular file of a bounded
 * size (or stdin, given as `-`). Duplicate keys and numbers a double cannot hold exactly are
 * refused here, for both formats, with their JSON paths. Nothing here knows about plugins;
 * see validate.ts.
 */
import { extname } from "node:path";
import { OpError } from "../errors.js";
import { readRegularFile } from "../files.js";
import type { Problem } from "../problems.js";
import { escapePointer, invalid } from "./validate.js";

/** The largest state file op reads; a host's whole description is far smaller. */
export const maxStateFileBytes = 64 * 1024 * 1024;
/** Deeper nesting than any state file needs; refused rather than walked. */
const maxDepth = 64;
/** What a Windows editor writes at the start of a UTF-8 file; accepted and dropped. */
const byteOrderMark = "\uFEFF";

export const stdinPath = "-";

export async function readStateFile(path: string): Promise<unknown> {
  const bytes = path === stdinPath ? await readStdin() : readStateBytes(path);
  return parseStateText(decode(bytes, path), path);
}

function readStateBytes(path: string): Buffer {
  try {
    return readRegularFile(path, { what: "state file", maxBytes: maxStateFileBytes });
  } catch (error) {
    if (causeCode(error) === "ENOENT") {
      throw new OpError("invalid-file", `${path}: no such file`, {
        hint: "pass the path of a state file, e.g. `op plan state/demo.json`, or - for stdin",
      });
    }
    throw error;
  }
}

function causeCode(error: unknown): string | undefined {
  return ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxStateFileBytes) {
      process.stdin.destroy();
      throw new OpError(
        "invalid-file",
        `stdin: the state file is larger than the limit of ${maxStateFileBytes} bytes`,
        { hint: `a state file larger than ${maxStateFileBytes} bytes is refused` },
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** The file as text; invalid UTF-8 would otherwise turn into U+FFFD and pass unnoticed. */
function decode(bytes: Buffer, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new OpError("invalid-file", `${nameOf(path)}: not UTF-8 text`, {
      hint: "save the state file as UTF-8",
    });
  }
}

function nameOf(path: string): string {
  return path === stdinPath ? "stdin" : path;
}

export async function parseStateText(input: string, path: string): Promise<unknown> {
  const text = input.startsWith(byteOrderMark) ? input.slice(1) : input;
  const extension = extname(path).toLowerCase();
  const looksLikeJson = extension === ".json" || /^\s*[{[]/.test(text);
  const document =
    looksLikeJson && extension !== ".yaml" && extension !== ".yml"
      ? await parseJson(text, path)
      : await parseYaml(text, path);
  const { keys, problems } = valueProblems(document);
  if (looksLikeJson && keys !== countKeyTokens(text))
    problems.unshift(...(await duplicateKeys(text)));
  if (problems.length > 0) throw invalid(nameOf(path), problems);
  return document;
}

async function parseJson(text: string, path: string): Promise<unknown> {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const { line, column } = await positionOf(text);
    throw new OpError(
      "invalid-file",
      `${nameOf(path)}:${line}:${column}: malformed JSON: ${reasonOf(message)}`,
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
      throw new OpError(
        "invalid-file",
        `${nameOf(path)}: unreadable YAML: ${(error as Error).message}`,
        {
          hint: "simplify the file (anchors and aliases especially)",
        },
      );
    }
    const at = error.linePos?.[0];
    const where = at ? `${at.line}:${at.col}` : "?";
    throw new OpError(
      "invalid-file",
      `${nameOf(path)}:${where}: malformed YAML: ${yamlReason(error.message)}`,
      {
        hint: "fix the syntax at that line and column",
      },
    );
  }
}

/**
 * One walk of the parsed document: numbers a double cannot hold exactly (an id of
 * 9007199254740993 would silently become ...992), nesting deeper than `maxDepth`, and the
 * number of object keys (compared with the text's to find duplicates). Iterative, so a
 * hostile nesting cannot overflow the stack.
 */
function valueProblems(document: unknown): { keys: number; problems: Problem[] } {
  const problems: Problem[] = [];
  let keys = 0;
  const pending: Array<{ value: unknown; path: string; depth: number }> = [
    { value: document, path: "", depth: 0 },
  ];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { value, path, depth } = item;
    if (typeof value === "number") {
      if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
        problems.push({
          path: path || "/",
          message: `number out of range: integers must lie within ±${Number.MAX_SAFE_INTEGER}`,
        });
      }
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth >= maxDepth) {
      problems.push({ path: path || "/", message: `nested more than ${maxDepth} levels deep` });
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--)
        pending.push({ value: value[i], path: `${path}/${i}`, depth: depth + 1 });
      continue;
    }
    const entries = Object.entries(value);
    keys += entries.length;
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string, unknown];
      pending.push({ value: child, path: `${path}/${escapePointer(key)}`, depth: depth + 1 });
    }
  }
  return { keys, problems };
}

/**
 * How many object keys the JSON text writes. In valid JSON every `"` outside a string opens
 * one, so matching strings left to right sees each string once; a key is one followed by `:`.
 * More keys in the text than in the parsed document means JSON.parse dropped duplicates.
 */
function countKeyTokens(text: string): number {
  let keys = 0;
  for (const match of text.matchAll(/"(?:[^"\\]|\\.)*"(\s*:)?/g)) if (match[1]) keys++;
  return keys;
}

/** Every key given twice in one object, with its path and both lines (slow path only). */
async function duplicateKeys(text: string): Promise<Problem[]> {
  const { visit } = await import("jsonc-parser");
  const problems: Problem[] = [];
  const open: Array<Map<string, string>> = [];
  visit(text, {
    onObjectBegin: () => {
      open.push(new Map());
    },
    onObjectEnd: () => {
      open.pop();
    },
    onObjectProperty: (property, _offset, _length, line, column, pathSupplier) => {
      const seen = open.at(-1);
      if (seen === undefined) return;
      const here = `${line + 1}:${column + 1}`;
      const first = seen.get(property);
      if (first === undefined) {
        seen.set(property, here);
        return;
      }
      const path = [...pathSupplier(), property].map((p) => escapePointer(String(p))).join("/");
      problems.push({
        path: `/${path}`,
        message: `key ${JSON.stringify(property)} is given twice in the same object (at ${first} and ${here}); JSON would keep only the last`,
      });
    },
  });
  return problems;
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
