/**
 * The only module that starts processes. Plugins reach it through `ctx.exec`, which is what
 * lets tests point a whole plugin at a network namespace and lets errors name the command.
 *
 * Built on node:child_process rather than execa (the library first chosen for this): importing
 * execa costs about 120 ms of CPU per op start, more than the whole budget of a converged
 * `op plan` on the network plugin, and op needs only the part execa wraps — spawn without a
 * shell, feed stdin, collect output, map ENOENT and timeouts to clear errors.
 */
import { spawn } from "node:child_process";
import { OpError } from "./errors.js";
import { trace } from "./trace.js";

export interface RunOptions {
  /** Text written to the command's standard input. */
  input?: string;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
  timeoutMs?: number;
}

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
export function createRunner(options: { netns?: string } = {}): Runner {
  const netns = options.netns;
  return {
    netns,
    async run(command, args, runOptions = {}) {
      const [file, argv] =
        netns === undefined ? [command, args] : ["ip", ["netns", "exec", netns, command, ...args]];
      const result = await spawnCollect(command, file, argv, runOptions);
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

function spawnCollect(
  command: string,
  file: string,
  argv: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  trace(`spawn ${command} ${argv.slice(0, 3).join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      env: { ...process.env, LC_ALL: "C" },
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.timeoutMs === undefined
        ? {}
        : { timeout: options.timeoutMs, killSignal: "SIGKILL" }),
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // A command that exits without reading its input closes the pipe; that is not our error.
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");

    child.on("error", (error: NodeJS.ErrnoException) => {
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
      if (signal !== null && code === null) {
        const why =
          signal === "SIGKILL" && options.timeoutMs !== undefined
            ? `timed out after ${options.timeoutMs} ms`
            : `killed by ${signal}`;
        reject(new OpError("command-failed", `${command} ${why}`));
        return;
      }
      resolve({
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        exitCode: code ?? 1,
      });
    });
  });
}
