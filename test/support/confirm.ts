/**
 * What `op apply --confirm` leaves beside a test's ledger (src/cli/confirm.ts): the marker of
 * the run that waits, the outcome of the last one, and the watcher process the marker names.
 */
import { existsSync, readFileSync } from "node:fs";
import type { ConfirmOutcome, PendingConfirm } from "../../src/cli/confirm.js";

/** The marker and last outcome of the ledger `ledger()` names (read each time: tests make a new one). */
export function confirmFiles(ledger: () => string | undefined) {
  const markerPath = () => `${ledger()}.confirm`;
  const readJson = <T>(path: string): T | undefined =>
    existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as T) : undefined;
  return {
    readMarker: () => readJson<PendingConfirm>(markerPath()),
    lastOutcome: () => readJson<ConfirmOutcome>(`${markerPath()}.last`),
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL, for a watcher a failed test left behind; one gone already is fine. */
export function stop(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}
