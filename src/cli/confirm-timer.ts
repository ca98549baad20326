/**
 * The systemd way of keeping an `op apply --confirm` deadline (src/cli/confirm.ts): where
 * systemd is PID 1, a transient timer (`systemd-run --on-active=...`) starts
 * `op confirm-deadline RUN DEADLINE` as a service at the deadline. The timer lives in PID 1, so
 * neither a kill of op's whole process group nor a dropped SSH session (which may take the
 * session's scope with it) can stop it. `op confirm` stops the timer; but the marker stays
 * what decides: whoever claims it first acts, so a timer that fires after a confirm finds no
 * marker naming its run and does nothing.
 *
 * A service gets none of the caller's environment: op's own `OP_*` variables and PATH are passed
 * with --setenv, and the ledger's paths on the command line. It runs in PID 1's network namespace
 * unless told otherwise: an op that runs inside a named one (`ip netns exec NAME`) passes it as
 * NetworkNamespacePath; in an unnamed one op cannot, and the caller keeps the deadline itself.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { OpError } from "../errors.js";
import { createRunner } from "../exec.js";
import { commandEnvironment } from "../host/settings.js";

/** sd_booted(3)'s test: this directory exists only while systemd is PID 1. */
export const systemdRunDir = "/run/systemd/system";

export function systemdIsInit(): boolean {
  return existsSync(systemdRunDir);
}

/** The transient unit (`.timer` and `.service`) that keeps `run`'s deadline. */
export function confirmUnit(run: string): string {
  return `op-confirm-${run}`;
}

/**
 * Arms a transient timer that runs `command` at `deadline`; returns its unit. Throws (with
 * systemd-run's words) when it cannot: the caller then keeps the deadline another way.
 */
export async function armTimer(run: string, deadline: Date, command: string[]): Promise<string> {
  const netns = ownNetns();
  if (netns === undefined) {
    throw new OpError(
      "invalid-state",
      "op runs in a network namespace with no name under /run/netns",
      {
        hint: "systemd could not run the rollback there",
      },
    );
  }
  const unit = confirmUnit(run);
  const seconds = Math.max(1, Math.ceil((deadline.getTime() - Date.now()) / 1000));
  // op's own variables: the settings, and OP_ROOT (where a relocated install's native addon is).
  const env = Object.entries(commandEnvironment()).flatMap(([name, value]) =>
    value && (name === "PATH" || name.startsWith("OP_")) ? [`--setenv=${name}=${value}`] : [],
  );
  await createRunner().run("systemd-run", [
    `--unit=${unit}`,
    `--description=op: roll back run ${run} unless op confirm comes by ${deadline.toISOString()}`,
    `--on-active=${seconds}s`,
    // systemd's default accuracy is a minute: the rollback is due at the deadline.
    "--timer-property=AccuracySec=100ms",
    "--collect",
    "--quiet",
    ...(netns === null ? [] : [`--property=NetworkNamespacePath=${netns}`]),
    ...env,
    "--",
    ...command,
  ]);
  return unit;
}

/** Stops `unit`'s timer; one that fired or went already is fine. Returns a failure's words. */
export async function stopTimer(unit: string): Promise<string | undefined> {
  const result = await createRunner().run("systemctl", ["stop", `${unit}.timer`], {
    check: false,
  });
  if (result.exitCode === 0 || /not loaded/i.test(result.stderr)) return undefined;
  return result.stderr.trim() || `systemctl exited with ${result.exitCode}`;
}

/**
 * This process's network namespace as systemd can be told it: the `/run/netns/NAME` that is the
 * same namespace, null when it is PID 1's (systemd's default), or undefined when op cannot
 * tell (PID 1's namespace unreadable, or an unnamed one): then no timer.
 */
function ownNetns(): string | null | undefined {
  const id = (path: string): string | undefined => {
    try {
      const stat = statSync(path);
      return `${stat.dev}:${stat.ino}`;
    } catch {
      return undefined; // gone meanwhile, or not ours to read
    }
  };
  const own = id("/proc/self/ns/net");
  if (own === undefined) return undefined;
  const dir = "/run/netns";
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (id(join(dir, name)) === own) return join(dir, name);
  }
  return id("/proc/1/ns/net") === own ? null : undefined;
}
