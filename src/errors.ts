/**
 * The one error type op raises on purpose. Anything else that reaches the CLI edge is a bug
 * and is printed with its stack.
 */

/**
 * Error codes and the exit code each maps to. Most are 1 (error); 2 is reserved for drift
 * (`apply --check`), 3 for a ledger that fails verification, 64 for a bad command line and 75
 * for "another run holds the lock / ledger, try again later" (sysexits' EX_USAGE, EX_TEMPFAIL).
 */
export const errorCodes = {
  usage: 64,
  "invalid-file": 1,
  "invalid-state": 1,
  "unknown-plugin": 1,
  "tool-missing": 1,
  "daemon-unavailable": 1,
  "permission-denied": 1,
  /** The file system refused one of op's own files (full, read-only, I/O error...). */
  "file-error": 1,
  locked: 75,
  "apply-failed": 1,
  "not-converged": 1,
  "command-failed": 1,
  "ledger-corrupt": 3,
  "ledger-busy": 75,
  "not-found": 1,
  /** `op apply PLANFILE`: the host (or the plan) is not what the plan was made from. */
  "plan-stale": 1,
  /** A bug in op, as `--json` names it (never thrown: any other error is one). */
  internal: 70,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface ErrorContext {
  plugin?: string;
  phase?: string;
  id?: string;
}

/**
 * One problem under an error, as `--json` gives it: `path` is a JSON pointer into the state
 * file (`/plugins/nftables/tables/0`) when the problem is in the file, else what it is about
 * (`nftables table inet/x`), or "" for the error as a whole.
 */
export interface ErrorDetail {
  path: string;
  message: string;
  hint?: string;
}

/**
 * A detail given as a line: `PATH: MESSAGE` when it starts with a JSON pointer, else the
 * message alone (callers that know more pass an ErrorDetail).
 */
export function detailOf(detail: string | ErrorDetail): ErrorDetail {
  if (typeof detail !== "string") return detail;
  const split = detail.startsWith("/") ? detail.indexOf(": ") : -1;
  return split < 0
    ? { path: "", message: detail }
    : { path: detail.slice(0, split), message: detail.slice(split + 2) };
}

/** A detail as one line of text: the form op printed before details had a structure. */
export function detailLine({ path, message, hint }: ErrorDetail): string {
  return `${path === "" ? "" : `${path}: `}${message}${hint ? ` (${hint})` : ""}`;
}

export class OpError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly context: ErrorContext;
  /** Extra problems shown under the message, e.g. every schema violation, each with its path. */
  readonly items: readonly ErrorDetail[];

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      hint?: string;
      context?: ErrorContext;
      details?: readonly (string | ErrorDetail)[];
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OpError";
    this.code = code;
    this.hint = options.hint;
    this.context = options.context ?? {};
    this.items = (options.details ?? []).map(detailOf);
  }

  /** The details as lines of text (the text form of the error). */
  get details(): readonly string[] {
    return this.items.map(detailLine);
  }

  get exitCode(): number {
    return errorCodes[this.code];
  }

  /** A copy of this error that also names where it happened (outer context fills gaps only). */
  within(context: ErrorContext): OpError {
    return new OpError(this.code, this.message, {
      hint: this.hint,
      details: this.items,
      context: { ...context, ...this.context },
      cause: this.cause,
    });
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      ...this.context,
      details: this.items,
    };
  }
}

/**
 * What a plugin throws is wrapped with its plugin, phase and id. An OpError keeps its code;
 * anything else stays a bug (it is rethrown unchanged so its stack survives).
 */
export function withContext(error: unknown, context: ErrorContext): unknown {
  return error instanceof OpError ? error.within(context) : error;
}
