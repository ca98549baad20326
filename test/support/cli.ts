/**
 * Runs the built `op` binary (scripts/op → dist/) the way a user does, with its ledger, key,
 * lock, cache and status file in a temporary directory so runs never touch the host's own.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "..", "..");
export const opBinary = join(repoRoot, "scripts", "op");

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** How a run started with `start` ended, and how long it took. */
export interface CliFinished {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliRunOptions {
  netns?: string;
  env?: Record<string, string>;
}

export interface CliSandbox {
  dir: string;
  env: Record<string, string>;
  /** Runs `op ARGS`, inside `netns` when given. */
  op(args: string[], options?: CliRunOptions): CliResult;
  /** Starts `op ARGS` without blocking this process (for servers or signals the test runs). */
  start(
    args: string[],
    options?: CliRunOptions,
  ): { child: ChildProcess; done: Promise<CliFinished> };
  cleanup(): void;
}

export function createCliSandbox(): CliSandbox {
  const dir = mkdtempSync(join(tmpdir(), "op-cli-"));
  const env = {
    OP_LEDGER: join(dir, "ledger"),
    OP_LEDGER_KEY: join(dir, "keys", "ledger.key"),
    OP_LOCK: join(dir, "op.lock"),
    OP_CACHE_DIR: join(dir, "cache"),
    OP_STATUS: join(dir, "status.json"),
  };
  /** `op ARGS` as a program, its arguments and its environment; through `ip netns exec` in a netns. */
  const command = (args: string[], options: CliRunOptions) => ({
    file: options.netns === undefined ? opBinary : "ip",
    argv: options.netns === undefined ? args : ["netns", "exec", options.netns, opBinary, ...args],
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env, ...options.env },
  });
  return {
    dir,
    env,
    op(args, options = {}) {
      const run = command(args, options);
      const result = spawnSync(run.file, run.argv, { env: run.env, encoding: "utf8" });
      return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    },
    start(args, options = {}) {
      const started = Date.now();
      const run = command(args, options);
      const child = spawn(run.file, run.argv, { env: run.env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const done = new Promise<CliFinished>((resolve) =>
        child.on("close", (status, signal) =>
          resolve({ status, signal, stdout, stderr, ms: Date.now() - started }),
        ),
      );
      return { child, done };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
