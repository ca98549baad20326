/**
 * The only module that starts processes. Plugins reach it through `ctx.exec`, which is what
 * lets tests point a whole plugin at a network namespace and lets errors name the command.
 */
import { execa } from "execa";
import { OpError } from "./errors.js";

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
      let result: Awaited<ReturnType<typeof execa>>;
      try {
        result = await execa(file, argv, {
          input: runOptions.input ?? "",
          reject: false,
          stripFinalNewline: false,
          timeout: runOptions.timeoutMs,
          env: { LC_ALL: "C" },
        });
      } catch (error) {
        throw new OpError("command-failed", `could not run ${command}: ${String(error)}`);
      }
      if (result.failed && result.exitCode === undefined) {
        const missing = (result as { code?: string }).code === "ENOENT";
        if (missing) {
          throw new OpError("tool-missing", `${command} is not installed or not on PATH`, {
            hint: "run `op doctor` to see what the host lacks",
          });
        }
        throw new OpError("command-failed", `${command} did not run: ${result.shortMessage}`);
      }
      const stdout = String(result.stdout ?? "");
      const stderr = String(result.stderr ?? "");
      const exitCode = result.exitCode ?? 1;
      if (exitCode !== 0 && runOptions.check !== false) {
        throw new OpError(
          "command-failed",
          `${command} ${args.join(" ")} exited with ${exitCode}: ${stderr.trim() || stdout.trim()}`,
        );
      }
      return { stdout, stderr, exitCode };
    },
  };
}
