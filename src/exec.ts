/**
 * The only module that starts processes. Plugins reach it through `ctx.exec`, which is what
 * lets tests point a whole plugin at a network namespace and lets errors name the command.
 *
 * Built on node:child_process rather than execa (the library first chosen for this): importing
 * execa costs more CPU per op start than the whole budget of a converged `op plan` on the
 * network plugin, and op needs only the part execa wraps — spawn without a
 * shell, feed stdin, collect output, map ENOENT and timeouts to clear errors.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { Observable } from "rxjs";
import { OpError } from "./errors.js";
import { commandEnvironment } from "./host/settings.js";
import { OutcomeUnknown } from "./outcome.js";
import { trace } from "./trace.js";

export interface RunOptions {
  /** Text written to the command's standard input. */
  input?: string;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
  /**
   * How long the command may run before it is killed (SIGKILL) and the run fails naming it;
   * default the runner's (OP_COMMAND_TIMEOUT, src/host/settings.ts), else 120 s. No command op
   * runs should take that long.
   */
  timeoutMs?: number;
  /** An open file given to the command as its standard input, instead of `input`. */
  stdinFile?: number;
}

/** Seconds a command may run unless its caller says otherwise (OP_COMMAND_TIMEOUT overrides). */
export const defaultCommandTimeoutSeconds = 120;

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface Runner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** The network namespace commands run in, if any (for messages and sandboxing). */
  readonly netns: string | undefined;
}

/** Processes started directly (no shell, so names with shell characters stay inert). */
export function createRunner(
  options: {
    netns?: string;
    /** Where commands' output files are made: /dev/shm (memory), else TMPDIR (read now). */
    outputDirs?: readonly string[];
    /** Seconds a command may run unless its caller says otherwise (the settings' OP_COMMAND_TIMEOUT). */
    timeoutSeconds?: number;
  } = {},
): Runner {
  const netns = options.netns;
  const outputDirs = options.outputDirs ?? ["/dev/shm", tmpdir()];
  const defaultTimeoutMs = (options.timeoutSeconds ?? defaultCommandTimeoutSeconds) * 1000;
  return {
    netns,
    async run(command, args, runOptions = {}) {
      const [file, argv] =
        netns === undefined ? [command, args] : ["ip", ["netns", "exec", netns, command, ...args]];
      const result = await spawnCollect(
        command,
        file,
        argv,
        { ...runOptions, timeoutMs: runOptions.timeoutMs ?? defaultTimeoutMs, args },
        outputDirs,
      );
      if (result.exitCode !== 0 && runOptions.check !== false) {
        const output = result.stderr.trim() || result.stdout.trim();
        throw new OpError(
          "command-failed",
          `${command} ${args.join(" ")} exited with ${result.exitCode}: ${output}`,
        );
      }
      return result;
    },
  };
}

/** Linux's O_TMPFILE (not in node:fs's constants): a file with no name, gone when closed. */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

/**
 * Standard output goes to an unnamed file rather than a pipe. A pipe holds 64 KiB: a large
 * dump (`ip -j -d` of 400 links is ~450 KiB) stops the command each time it fills, until
 * op's thread is free to drain it, and op's thread is busy checking the file meanwhile.
 * A file never blocks the writer, and it is read once, when the command has exited.
 */
function openOutputFile(dirs: readonly string[]): number {
  for (const dir of dirs) {
    try {
      return openSync(dir, O_TMPFILE | constants.O_RDWR, 0o600);
    } catch {}
  }
  // File systems without O_TMPFILE: a private name, unlinked at once.
  let why = "";
  for (const dir of dirs) {
    const path = join(dir, `op-out-${process.pid}-${randomBytes(6).toString("hex")}`);
    try {
      const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o600);
      unlinkSync(path);
      return fd;
    } catch (error) {
      why = (error as NodeJS.ErrnoException).code ?? String(error);
    }
  }
  throw new OpError(
    "command-failed",
    `no temporary file for a command's output in ${dirs.join(" or ")} (${why})`,
    { hint: "make TMPDIR (or /tmp) a writable directory" },
  );
}

function readOutputFile(fd: number): string {
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const read = readSync(fd, buffer, done, size - done, done);
      if (read === 0) break;
      done += read;
    }
    return buffer.toString("utf8", 0, done);
  } finally {
    closeSync(fd);
  }
}

async function spawnCollect(
  command: string,
  file: string,
  argv: readonly string[],
  options: RunOptions & { timeoutMs: number; args: readonly string[] },
  outputDirs: readonly string[],
): Promise<RunResult> {
  trace(`spawn ${command} ${argv.slice(0, 3).join(" ")}`);
  const output = openOutputFile(outputDirs);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // stderr is a pipe (so never null); stdout is the file; stdin a pipe unless a file is given.
    const child = spawn(file, argv, {
      env: commandEnvironment(),
      stdio: [options.stdinFile ?? "pipe", output, "pipe"],
      timeout: options.timeoutMs,
      killSignal: "SIGKILL",
    }) as ChildProcessByStdio<Writable | null, null, Readable>;
    // 'error' (the command did not start) may be followed by 'close': the file is taken once.
    let outputTaken = false;
    const takeOutput = (): string => {
      if (outputTaken) return "";
      outputTaken = true;
      return readOutputFile(output);
    };
    const stderr: Buffer[] = [];
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // A command that exits without reading its input closes the pipe; that is not our error.
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.input ?? "");

    child.on("error", (error: NodeJS.ErrnoException) => {
      takeOutput();
      if (error.code === "ENOENT") {
        reject(
          new OpError("tool-missing", `${command} is not installed or not on PATH`, {
            hint: "run `op doctor` to see what the host lacks",
          }),
        );
      } else {
        reject(new OpError("command-failed", `could not run ${command}: ${error.message}`));
      }
    });
    child.on("close", (code, signal) => {
      trace(`exit ${command} ${code ?? signal}`);
      const stdout = takeOutput();
      if (signal !== null && code === null) {
        const timedOut = signal === "SIGKILL" && Date.now() >= started + options.timeoutMs;
        reject(
          timedOut
            ? new OpError(
                "command-failed",
                `${[command, ...options.args.slice(0, 3)].join(" ")} did not finish within ${options.timeoutMs / 1000} s and was killed`,
                {
                  hint: "the host is overloaded or the command hangs; OP_COMMAND_TIMEOUT=SECONDS allows longer",
                  // What it did before it was killed is not known.
                  cause: new OutcomeUnknown(`${command} was killed by its timeout`),
                },
              )
            : new OpError("command-failed", `${command} killed by ${signal}`),
        );
        return;
      }
      resolve({
        stdout,
        stderr: Buffer.concat(stderr).toString("utf8"),
        exitCode: code ?? 1,
      });
    });
  });
}

/** The longest line `followLines` passes on; a longer one is dropped whole (a monitor's lines are short). */
export const maxFollowedLineChars = 64 * 1024;

/**
 * A long-running command's standard output as lines (`ip monitor`, `nft -j monitor`): the
 * command starts on subscribe and is killed on unsubscribe, so no process outlives its
 * listener. Its output is always read, never paused: a monitor that is not read fills its pipe
 * and the kernel drops its events. The stream errors when the command exits or cannot start.
 */
export function followLines(
  command: string,
  args: readonly string[],
  options: { netns?: string } = {},
): Observable<string> {
  const [file, argv] =
    options.netns === undefined
      ? [command, args]
      : ["ip", ["netns", "exec", options.netns, command, ...args]];
  return new Observable<string>((subscriber) => {
    trace(`follow ${command} ${args.join(" ")}`);
    const child = spawn(file, argv, {
      env: commandEnvironment(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stopped = false;
    const stderr: string[] = [];
    const lines = lineSplitter(maxFollowedLineChars);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      for (const line of lines(chunk)) subscriber.next(line);
    });
    // Only the start of stderr is kept: enough to say why it stopped.
    child.stderr.on("data", (chunk: string) => {
      if (stderr.join("").length < 4096) stderr.push(chunk);
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (stopped) return;
      subscriber.error(
        error.code === "ENOENT"
          ? new OpError("tool-missing", `${command} is not installed or not on PATH`, {
              hint: "run `op doctor` to see what the host lacks",
            })
          : new OpError("command-failed", `could not run ${command}: ${error.message}`),
      );
    });
    child.on("close", (code, signal) => {
      if (stopped) return;
      const said = stderr.join("").trim().slice(0, 500);
      subscriber.error(
        new OpError(
          "command-failed",
          `${command} ${args.join(" ")} stopped (${code ?? signal})${said ? `: ${said}` : ""}`,
        ),
      );
    });
    return () => {
      stopped = true;
      // `ip netns exec` execs the command itself, so this pid is the monitor's.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      trace(`unfollow ${command}`);
    };
  });
}

/**
 * Cuts a stream of text into lines; fed each chunk in turn, it returns the lines that chunk
 * completed. A line longer than `maxChars` characters is dropped up to its end, so hostile or broken
 * output cannot grow the buffer without bound.
 */
export function lineSplitter(maxChars: number): (chunk: string) => string[] {
  let buffer = "";
  let skipping = false;
  return (chunk) => {
    const parts = (buffer + chunk).split("\n");
    buffer = parts.pop() ?? "";
    const lines: string[] = [];
    for (const part of parts) {
      if (skipping) skipping = false;
      else if (part.length <= maxChars) lines.push(part);
    }
    if (skipping && parts.length === 0) {
      // Still inside the line being dropped.
      buffer = "";
    } else if (buffer.length > maxChars) {
      buffer = "";
      skipping = true;
    }
    return lines;
  };
}
