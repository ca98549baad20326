/**
 * Runs one command line and decides how errors are printed and which exit code they map to.
 * Shared by both ways op starts: main.ts (loading modules) and src/boot/snapshot.ts (a V8
 * startup snapshot with every module already loaded).
 */
import { type Command, CommanderError } from "commander";
import { errorCodes, OpError } from "../errors.js";
import { loadSettings, type Settings } from "../host/settings.js";
import type { PluginRegistry } from "../registry.js";
import { trace } from "../trace.js";
import { printDocument } from "./contract.js";
import { errorJson, renderError } from "./output.js";
import { buildProgram } from "./program.js";
import type { WatchSeams } from "./watch.js";

/**
 * Builds the command line's program (the startup snapshot does this once, at build time) and
 * returns the function that runs one command line with it and gives the exit code.
 */
export function prepareCli(
  registry: PluginRegistry,
  seams?: WatchSeams,
): (argv: string[]) => Promise<number> {
  let exitCode = 0;
  let settings: Settings | undefined;
  const program = buildProgram(
    (code) => {
      exitCode = code;
    },
    registry,
    // The environment of this command line, read once it is run (the program is built once).
    () => {
      settings ??= loadSettings(process.env);
      return settings;
    },
    seams,
  );
  return async (argv) => {
    trace("cli start");
    settings = undefined;
    // `op apply | head`: a reader that stops early is no reason to crash, least of all halfway
    // through an apply. The run goes on to its end (ledger included), its output unread.
    const readerGone = new Set(["EPIPE", "ERR_STREAM_DESTROYED"]);
    for (const stream of [process.stdout, process.stderr]) {
      stream.on("error", (error: NodeJS.ErrnoException) => {
        if (!readerGone.has(error.code ?? "")) throw error;
      });
    }
    const json = jsonRequested(argv);
    quietUsageErrors(program, json);
    try {
      await program.parseAsync(bareEvents(argv), { from: "user" });
      return exitCode;
    } catch (error) {
      if (error instanceof CommanderError) {
        // Help and version requests exit 0; anything else commander rejects is a usage error.
        if (error.exitCode === 0) return 0;
        if (json) printError(usageError(error));
        return errorCodes.usage;
      }
      if (json && error instanceof OpError) printError(error);
      else {
        process.stderr.write(renderError(error));
        // A bug is a document too for a program reading stdout; the stack stays on stderr.
        if (json) printError(internalError(error));
      }
      return error instanceof OpError ? error.exitCode : 70;
    }
  };
}

/**
 * `--json` among op's own options: those before a `--` (after it come a command's own
 * arguments, as in `op exec web1 -- tool --json`).
 */
export function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).includes("--json");
}

/**
 * A bare `--events` (op's, before `--`) means stdout: given to commander as `--events=-`, so
 * its optional FILE never takes the next word (`op apply --events state.json`).
 */
function bareEvents(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((word, i) => (word === "--events" && (end < 0 || i < end) ? "--events=-" : word));
}

/**
 * With `--json`, commander's own error lines (and its "run with --help" note) are not printed:
 * the error is one JSON document on stdout instead. Set per command line, on every command
 * (commander prints from the subcommand that failed); the program is built once.
 */
function quietUsageErrors(program: Command, json: boolean): void {
  const write = (text: string) => process.stderr.write(text);
  const walk = (command: Command): void => {
    command.configureOutput({
      writeErr: json ? () => {} : write,
      outputError: json ? () => {} : (text, print) => print(text),
    });
    for (const sub of command.commands) walk(sub);
  };
  walk(program);
}

/** A commander error as op's usage error: its message without commander's "error: ". */
function usageError(error: CommanderError): OpError {
  // A command line with no command: commander shows the help (not with --json) and says only this.
  const message =
    error.code === "commander.help" ? "no command given" : error.message.replace(/^error: /, "");
  return new OpError("usage", message, {
    hint: "run op --help, or op COMMAND --help, for usage",
  });
}

function internalError(error: unknown): OpError {
  return new OpError(
    "internal",
    `internal error (a bug in op): ${error instanceof Error ? error.message : String(error)}`,
    {
      hint: "please report it with the stack printed on stderr",
    },
  );
}

function printError(error: OpError): void {
  printDocument({ error: errorJson(error) });
}

/**
 * Ends the process with `code` once a command is done and its output is written. process.exit,
 * not a natural end: every command awaits its own work (ledger closed, lock released), and
 * tearing down the heap of a finished run is wasted work at every start. A pipe takes only
 * what fits in it (64 KiB) and Node queues the rest, so an exit before it drains cuts the
 * output (`op schema | wc -c` gave 65,536 of 84,425 bytes): exit once both streams are empty.
 * 'exit' listeners still run.
 */
export function exitWith(code: number): void {
  trace("exit");
  const streams = [process.stdout, process.stderr];
  const exitIfWritten = () => {
    if (streams.every((stream) => stream.writableLength === 0)) process.exit(code);
  };
  for (const stream of streams) stream.on("drain", exitIfWritten);
  exitIfWritten();
}
