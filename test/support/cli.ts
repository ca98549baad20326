/**
 * Runs the built `op` binary (scripts/op → dist/) the way a user does, with its ledger, key,
 * lock and cache in a temporary directory so runs never touch the host's own.
 */
import { spawnSync } from "node:child_process";
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

export interface CliSandbox {
  dir: string;
  env: Record<string, string>;
  /** Runs `op ARGS`, inside `netns` when given. */
  op(args: string[], options?: { netns?: string; env?: Record<string, string> }): CliResult;
  cleanup(): void;
}

export function createCliSandbox(): CliSandbox {
  const dir = mkdtempSync(join(tmpdir(), "op-cli-"));
  const env = {
    OP_LEDGER: join(dir, "ledger"),
    OP_LEDGER_KEY: join(dir, "keys", "ledger.key"),
    OP_LOCK: join(dir, "op.lock"),
    OP_CACHE_DIR: join(dir, "cache"),
  };
  return {
    dir,
    env,
    op(args, options = {}) {
      const [command, argv] =
        options.netns === undefined
          ? [opBinary, args]
          : ["ip", ["netns", "exec", options.netns, opBinary, ...args]];
      const result = spawnSync(command, argv, {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env, ...options.env },
      });
      return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
