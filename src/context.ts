/** Builds the `ctx` every plugin receives, and the paths a run uses. */
import { createRunner } from "./exec.js";
import { createIncusClient, defaultIncusSocket, type IncusClient } from "./incus.js";
import type { Ctx, Logger, RunOptions } from "./plugin.js";

export interface Paths {
  ledgerDir: string;
  keyFile: string;
  lockFile: string;
  cacheDir: string;
}

/** Defaults, overridden by environment variables, overridden by command-line options. */
export function resolvePaths(
  overrides: Partial<Paths> = {},
  env: NodeJS.ProcessEnv = process.env,
): Paths {
  return {
    ledgerDir: overrides.ledgerDir ?? env.OP_LEDGER ?? "/var/lib/op/ledger",
    keyFile: overrides.keyFile ?? env.OP_LEDGER_KEY ?? "/etc/op/ledger.key",
    lockFile: overrides.lockFile ?? env.OP_LOCK ?? "/run/op/lock",
    cacheDir: overrides.cacheDir ?? env.OP_CACHE_DIR ?? "/var/cache/op",
  };
}

export function createCtx(options: {
  cacheDir?: string;
  netns?: string;
  verbose?: boolean;
  run?: Partial<RunOptions>;
}): Ctx {
  let incus: IncusClient | undefined;
  return {
    exec: createRunner(options.netns === undefined ? {} : { netns: options.netns }),
    clock: () => new Date(),
    log: stderrLogger(options.verbose ?? false),
    cacheDir: options.cacheDir,
    options: {
      allowUplink: options.run?.allowUplink ?? false,
      ...(options.run?.stateDir === undefined ? {} : { stateDir: options.run.stateDir }),
    },
    // Made on first use: commands that never touch Incus never look for its socket.
    get incus(): IncusClient {
      incus ??= createIncusClient(process.env.OP_INCUS_SOCKET || defaultIncusSocket);
      return incus;
    },
  };
}

function stderrLogger(verbose: boolean): Logger {
  return {
    debug: (message) => {
      if (verbose) process.stderr.write(`debug: ${message}\n`);
    },
    info: (message) => process.stderr.write(`${message}\n`),
    warn: (message) => process.stderr.write(`warning: ${message}\n`),
  };
}
