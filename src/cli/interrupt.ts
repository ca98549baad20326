/**
 * SIGINT and SIGTERM during `op apply`. Before the run changes anything, a signal stops it at
 * once (the lock goes with the process). Once it changes the host, the first signal starts no
 * new action and lets those in flight finish, for at most `graceSeconds`, so that each gets
 * its outcome recorded; a second signal, or the grace running out, exits at once with the
 * records written so far (the next run reports and settles what has no outcome).
 */
export interface Interrupt {
  /** Aborted at the first signal. */
  readonly signal: AbortSignal;
  /** The first signal's name, once one came. */
  readonly received: NodeJS.Signals | undefined;
  /** From now on the run changes the host: a first signal no longer exits at once. */
  changing(): void;
  dispose(): void;
}

/** The shell's convention: 128 + the signal's number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === "SIGINT" ? 130 : 143;
}

/** How many runs watch their own signals now (watchInterrupts, until dispose). */
let watchingRuns = 0;

/**
 * For the whole of a command that runs applies: a SIGINT or SIGTERM while no run watches its
 * own (before the first, between two, or after the last while op records its status) exits
 * at once with the shell's code, saying so. Without it, the default action killed op there
 * silently, and a caller could not tell that from a kill before op had read anything.
 */
export function exitOnSignalOutsideRuns(say: (line: string) => void): () => void {
  const onSignal = (name: NodeJS.Signals): void => {
    if (watchingRuns > 0) return;
    say(`op: ${name}: no run in progress; stopping`);
    process.exit(signalExitCode(name));
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) process.on(name, onSignal);
  return () => {
    for (const name of signals) process.removeListener(name, onSignal);
  };
}

export function watchInterrupts(options: {
  graceSeconds: number;
  say: (line: string) => void;
  exitNow: (code: number) => void;
}): Interrupt {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let changing = false;
  const onSignal = (name: NodeJS.Signals): void => {
    if (received !== undefined || !changing) {
      options.say(
        received === undefined
          ? `op: ${name}: stopped before changing anything`
          : `op: ${name} again: stopping now; the next run reports and settles what has no outcome`,
      );
      options.exitNow(signalExitCode(received ?? name));
      return;
    }
    received = name;
    options.say(
      `op: ${name}: starting no new action, waiting up to ${options.graceSeconds} s for those in flight (${name} again stops at once)`,
    );
    controller.abort();
    setTimeout(() => {
      options.say(
        `op: the actions in flight did not finish within ${options.graceSeconds} s; stopping: the next run settles them`,
      );
      options.exitNow(signalExitCode(name));
    }, options.graceSeconds * 1000).unref();
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) process.on(name, onSignal);
  watchingRuns++;
  let disposed = false;
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    changing() {
      changing = true;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      watchingRuns--;
      for (const name of signals) process.removeListener(name, onSignal);
    },
  };
}
