/** Builds the `ctx` every plugin receives, and the paths a run uses. */
import { dirname, join } from "node:path";
import { createRunner, timeoutFromEnv } from "./exec.js";
import {
  createIncusClient,
  defaultIncusSocket,
  type IncusClient,
  type IncusClientOptions,
} from "./incus.js";
import type { Ctx, Logger, RunOptions } from "./plugin.js";

export interface Paths {
  ledgerDir: string;
  keyFile: string;
  lockFile: string;
  cacheDir: string;
  /** The key that authenticates cache entries: beside the ledger key, as secret as it. */
  cacheKeyFile: string;
}

/** Defaults, overridden by environment variables, overridden by command-line options. */
export function resolvePaths(
  overrides: Partial<Paths> = {},
  env: NodeJS.ProcessEnv = process.env,
): Paths {
  // An empty variable counts as unset: as a path it would mean the current directory.
  const keyFile = overrides.keyFile ?? (env.OP_LEDGER_KEY || "/etc/op/ledger.key");
  return {
    ledgerDir: overrides.ledgerDir ?? (env.OP_LEDGER || "/var/lib/op/ledger"),
    keyFile,
    lockFile: overrides.lockFile ?? (env.OP_LOCK || "/run/op/lock"),
    cacheDir: overrides.cacheDir ?? (env.OP_CACHE_DIR || "/var/cache/op"),
    cacheKeyFile: overrides.cacheKeyFile ?? join(dirname(keyFile), "cache.key"),
  };
}

export function createCtx(options: {
  cacheDir?: string;
  cacheKeyFile?: string;
  netns?: string;
  verbose?: boolean;
  run?: Partial<RunOptions>;
}): Ctx {
  let incus: IncusClient | undefined;
  const log = stderrLogger(options.verbose ?? false);
  return {
    exec: createRunner(options.netns === undefined ? {} : { netns: options.netns }),
    clock: () => new Date(),
    log,
    cacheDir: options.cacheDir,
    cacheKeyFile: options.cacheKeyFile,
    options: {
      allowUplink: options.run?.allowUplink ?? false,
      ...(options.run?.stateDir === undefined ? {} : { stateDir: options.run.stateDir }),
    },
    // Made on first use: commands that never touch Incus never look for its socket.
    get incus(): IncusClient {
      incus ??= createIncusClient(process.env.OP_INCUS_SOCKET || defaultIncusSocket, {
        ...incusTimeoutsFromEnv(),
        onProgress: (message) => log.info(message),
      });
      return incus;
    },
  };
}

/** OP_INCUS_TIMEOUT (one answer) and OP_INCUS_OPERATION_TIMEOUT (an operation), in seconds. */
export function incusTimeoutsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Pick<IncusClientOptions, "answerSeconds" | "operationSeconds"> {
  const answer = timeoutFromEnv("OP_INCUS_TIMEOUT", 0, env);
  const operation = timeoutFromEnv("OP_INCUS_OPERATION_TIMEOUT", 0, env);
  return {
    ...(answer > 0 ? { answerSeconds: answer } : {}),
    ...(operation > 0 ? { operationSeconds: operation } : {}),
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
