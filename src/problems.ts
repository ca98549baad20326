/**
 * One format for everything wrong with a state file, whoever found it: the file reader, the
 * schemas, a plugin's `check`. Each problem names its JSON path (RFC 6901, from the file's
 * root) and what is wrong there, and may say what to do about it.
 */
export interface Problem {
  /** e.g. `/plugins/network/interfaces/0/mtu`; `/` for the whole document. */
  path: string;
  message: string;
  /** What to change, when the message alone does not make it obvious. */
  hint?: string;
}

/** How a problem is shown under `op: error [invalid-file]: ...`: `PATH: MESSAGE (HINT)`. */
export function problemLine({ path, message, hint }: Problem): string {
  return `${path || "/"}: ${message}${hint ? ` (${hint})` : ""}`;
}

/**
 * A problem from a `JSON path: message` line, the form plugin checks return today. A line
 * that does not start with a path is kept whole as the message, at the document's root.
 */
export function problemFromLine(line: string): Problem {
  const split = line.startsWith("/") ? line.indexOf(": ") : -1;
  return split < 0
    ? { path: "/", message: line }
    : { path: line.slice(0, split), message: line.slice(split + 2) };
}
