/**
 * `op exec NAME -- CMD ARGS...`: runs a command in an instance through the plugin that works
 * inside instances (lxc), with op's own stdin, stdout and stderr. Not a state change: nothing
 * is planned, locked or written to the ledger (README, "Running commands in instances").
 */
import type { Writable } from "node:stream";
import { createCtx } from "../context.js";
import { OpError } from "../errors.js";
import type { ExecRequest, ExecTerminal } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import type { GlobalOptions } from "./commands.js";
import { printDocument } from "./contract.js";

export interface ExecOptions extends GlobalOptions {
  cwd?: string;
  env?: string[];
  user?: number;
  group?: number;
  timeout?: number;
  any?: boolean;
  tty?: boolean;
}

/** Signals op passes on to the command (Incus's own CLI does the same). */
const forwarded = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

export async function execCommand(
  instance: string,
  command: string[],
  options: ExecOptions,
  registry: PluginRegistry,
): Promise<number> {
  if (command.length === 0 || command[0] === "")
    throw new OpError("usage", "op exec: no command given", {
      hint: "name it after --: op exec NAME -- CMD ARGS...",
    });
  const environment = environmentOf(options.env ?? []);
  if (options.cwd !== undefined && !options.cwd.startsWith("/"))
    throw new OpError("usage", `--cwd ${JSON.stringify(options.cwd)} is not an absolute path`, {
      hint: "give the directory inside the instance from its root, e.g. --cwd /root",
    });
  const terminal = options.tty ? terminalOf(environment, options.settings.terminalType) : undefined;
  const plugin = (await registry.load()).find((candidate) => candidate.instances !== undefined);
  if (plugin?.instances === undefined)
    throw new OpError("usage", "no plugin of this op runs commands in instances");
  const ctx = createCtx({ settings: options.settings, verbose: options.verbose ?? false });

  // With --json, op's stdout carries the one JSON object: the command's output goes to
  // stderr, both streams still as they come, counted and hashed for the summary.
  const stdout = options.json ? tapped(process.stderr) : undefined;
  const stderr = options.json ? tapped(process.stderr) : undefined;
  const request: ExecRequest = {
    instance,
    command,
    any: options.any ?? false,
    environment,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.group === undefined ? {} : { group: options.group }),
    ...(options.timeout === undefined ? {} : { timeoutSeconds: options.timeout }),
    ...(terminal === undefined ? {} : { terminal }),
    stdio: {
      stdin: process.stdin,
      stdout: stdout?.stream ?? process.stdout,
      stderr: stderr?.stream ?? process.stderr,
    },
    forwardSignals(send) {
      const stops = Object.entries(forwarded).map(([name, number]) => {
        const handler = () => send(number);
        process.on(name, handler);
        return () => process.off(name, handler);
      });
      return () => {
        for (const stop of stops) stop();
      };
    },
  };
  // Raw: every key (^C, ^D, arrows) goes to the command's terminal, not to op's.
  if (terminal !== undefined) process.stdin.setRawMode(true);
  try {
    const result = await plugin.instances.exec(request, ctx);
    if (options.json)
      printDocument({
        exit_code: result.exitCode,
        instance: result.instance,
        project: result.project,
        command,
        timed_out: result.timedOut,
        ...(result.message === undefined ? {} : { message: result.message }),
        stdout: await stdout?.finish(),
        stderr: await stderr?.finish(),
      });
    return result.exitCode;
  } finally {
    if (terminal !== undefined) process.stdin.setRawMode(false);
  }
}

/** `--env K=V`, repeatable: the value may hold '=', the name may not be empty. */
export function environmentOf(pairs: readonly string[]): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0)
      throw new OpError(
        "usage",
        `--env ${JSON.stringify(pair)}: ${equals < 0 ? "no '='" : "the name before '=' is empty"}`,
        { hint: "give each variable as --env NAME=VALUE (VALUE may be empty: --env NAME=)" },
      );
    const name = pair.slice(0, equals);
    if (name.includes("\0"))
      throw new OpError("usage", `--env ${JSON.stringify(pair)}: the name holds a NUL byte`);
    environment[name] = pair.slice(equals + 1);
  }
  return environment;
}

/**
 * `-t`: the command gets a pseudo terminal the size of op's. It needs op's stdin to be a
 * terminal (keys are sent raw); with a pipe there is nothing to make raw, and the streams
 * would lose stdout and stderr apart, so -t is refused, not ignored.
 */
function terminalOf(environment: Record<string, string>, term: string | undefined): ExecTerminal {
  if (!process.stdin.isTTY)
    throw new OpError("usage", "-t needs a terminal on stdin, and op's stdin is not one", {
      hint: "leave -t out when input is piped or absent: stdout and stderr then stay apart",
    });
  // The terminal type, as `incus exec` passes it, unless --env gives one.
  if (term !== undefined && environment.TERM === undefined) environment.TERM = term;
  const out = process.stdout.isTTY ? process.stdout : undefined;
  return {
    columns: out?.columns ?? 80,
    rows: out?.rows ?? 24,
    onResize(listener) {
      // Node reads the new size at SIGWINCH and tells it as `resize`.
      const handler = () => listener({ columns: out?.columns ?? 80, rows: out?.rows ?? 24 });
      out?.on("resize", handler);
      return () => out?.off("resize", handler);
    },
  };
}

/** A stream into `target` (back-pressure kept) that counts and hashes what goes through. */
function tapped(target: NodeJS.WritableStream): {
  stream: Writable;
  /** Ends the stream; its size and hash once all of it has gone through. */
  finish(): Promise<{ bytes: number; sha256: string }>;
} {
  const { Writable } = process.getBuiltinModule("node:stream");
  const hash = process.getBuiltinModule("node:crypto").createHash("sha256");
  let bytes = 0;
  // A target whose reader went away takes nothing more: what comes is still counted, not held.
  let gone = false;
  target.once("error", () => {
    gone = true;
    target.emit("drain");
  });
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      if (gone || target.write(chunk)) callback();
      else target.once("drain", () => callback());
    },
  });
  return {
    stream,
    finish: () =>
      new Promise((resolve, reject) => {
        stream.once("error", reject);
        stream.end(() => resolve({ bytes, sha256: hash.digest("hex") }));
      }),
  };
}
