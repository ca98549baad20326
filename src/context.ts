/** Builds the `ctx` every plugin receives, and the paths a run uses. */
import { dirname, join } from "node:path";
import { createRunner } from "./exec.js";
import { createHost, type Host } from "./host/index.js";
import type { Settings } from "./host/settings.js";
import { createIncusClient, type IncusClient, type IncusClientOptions } from "./incus.js";
import type { Ctx, Logger, RunOptions } from "./plugin.js";

export interface Paths {
  ledgerDir: string;
  keyFile: string;
  lockFile: string;
  cacheDir: string;
  /** The key that authenticates cache entries: beside the ledger key, as secret as it. */
  cacheKeyFile: string;
}

/** The settings' paths (src/host/settings.ts), overridden by command-line options. */
export function resolvePaths(settings: Settings, overrides: Partial<Paths> = {}): Paths {
  const keyFile = overrides.keyFile ?? settings.keyFile;
  return {
    ledgerDir: overrides.ledgerDir ?? settings.ledgerDir,
    keyFile,
    lockFile: overrides.lockFile ?? settings.lockFile,
    cacheDir: overrides.cacheDir ?? settings.cacheDir,
    cacheKeyFile: overrides.cacheKeyFile ?? join(dirname(keyFile), "cache.key"),
  };
}

export function createCtx(options: {
  settings: Settings;
  cacheDir?: string;
  cacheKeyFile?: string;
  netns?: string;
  verbose?: boolean;
  run?: Partial<RunOptions>;
  /** Parts of the host layer to use instead of the host's own (tests). */
  host?: Partial<Host>;
}): Ctx {
  const { settings } = options;
  let incus: IncusClient | undefined;
  const log = stderrLogger(options.verbose ?? false);
  return {
    exec: createRunner({
      ...(options.netns === undefined ? {} : { netns: options.netns }),
      timeoutSeconds: settings.commandTimeoutSeconds,
    }),
    clock: () => new Date(),
    log,
    cacheDir: options.cacheDir,
    cacheKeyFile: options.cacheKeyFile,
    options: {
      allowUplink: options.run?.allowUplink ?? false,
      ...(options.run?.allowRestart === true ? { allowRestart: true } : {}),
      ...(options.run?.adopt === true ? { adopt: true } : {}),
      ...(options.run?.stateDir === undefined ? {} : { stateDir: options.run.stateDir }),
    },
    settings,
    host: createHost(settings, options.host),
    // Made on first use: commands that never touch Incus never look for its socket.
    get incus(): IncusClient {
      incus ??= createIncusClient(settings.incus.socket, {
        ...incusTimeouts(settings),
        onProgress: (message) => log.info(message),
      });
      return incus;
    },
  };
}

/** OP_INCUS_TIMEOUT (one answer) and OP_INCUS_OPERATION_TIMEOUT (an operation), in seconds. */
export function incusTimeouts(
  settings: Settings,
): Pick<IncusClientOptions, "answerSeconds" | "operationSeconds"> {
  const { answerSeconds, operationSeconds } = settings.incus;
  return {
    ...(answerSeconds === undefined ? {} : { answerSeconds }),
    ...(operationSeconds === undefined ? {} : { operationSeconds }),
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
