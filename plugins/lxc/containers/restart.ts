/**
 * Config keys Incus reads only when a container starts ("Live update: no" in Incus's instance
 * options): Incus stores a new value at once, so its config would look converged while the
 * running container still has the old one. A change of one on a running container therefore
 * needs a restart, which op does only when allowed (`restart: "allowed"`, `--allow-restart`).
 */
import type { FieldChange } from "../../../src/plugin.js";

const restartKeys = ["raw.lxc", "raw.idmap", "raw.seccomp", "security.privileged"];
const restartPrefixes = [
  "security.idmap.",
  "security.syscalls.",
  "limits.kernel.",
  "linux.sysctl.",
  "nvidia.",
];

export function needsRestart(key: string): boolean {
  return restartKeys.includes(key) || restartPrefixes.some((prefix) => key.startsWith(prefix));
}

/** The config keys among `changes` that a running container takes only after a restart. */
export function restartChanges(changes: readonly FieldChange[]): string[] {
  return changes
    .filter((change) => change.path.startsWith("config.") && needsRestart(change.path.slice(7)))
    .map((change) => change.path.slice(7));
}

/** The change entry that says the container is restarted to take the keys. */
export const restartPath = "restart";

/** Why a restart-needing change waits: what the plan and the run's report say. */
export function heldReason(keys: readonly string[]): string {
  return `restart required for ${keys.join(", ")}: held (allow it with "restart": "allowed" on the container or op apply --allow-restart)`;
}
