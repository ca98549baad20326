/**
 * `op ledger` commands beyond reading: how a record is shown in `op ledger log`, and
 * `op ledger rotate-key`. (The reading commands are in commands.ts.)
 */
import { randomUUID } from "node:crypto";
import type { LedgerRecord } from "../ledger/index.js";
import type { GlobalOptions } from "./commands.js";
import { printDocument } from "./contract.js";

/**
 * One line of `op ledger log`. `unknown` (op could not tell whether the host changed),
 * `settled` (a later run closed an intent, naming it), `DRIFT` (a check found the resource
 * differing and changed nothing) and `FLAPPING` (the watch stopped enforcing it) stand out
 * from ok and failed; a drift line says which fields differ.
 */
export function renderRecord(record: LedgerRecord): string {
  const status =
    record.status === "settled"
      ? `settled #${record.settles}`
      : loud.has(record.status)
        ? record.status.toUpperCase()
        : record.status;
  const detail = record.error
    ? `  ${record.error}`
    : record.status === "drift"
      ? driftDetail(record.changes)
      : "";
  return `${String(record.seq).padStart(6)}  ${record.time}  ${record.run.slice(0, 8)}  ${status.padEnd(7)}  ${record.action.padEnd(6)}  ${record.plugin} ${record.target}${detail}`;
}

/** Statuses that are not a step's outcome and must not be read as one. */
const loud = new Set<LedgerRecord["status"]>(["unknown", "drift", "flapping"]);

/** The fields a modify's drift names (paths only: the values are in `op ledger show`). */
function driftDetail(changes: unknown): string {
  if (!Array.isArray(changes)) return "";
  const paths = changes.flatMap((change) =>
    typeof (change as { path?: unknown })?.path === "string"
      ? [(change as { path: string }).path]
      : [],
  );
  return paths.length === 0 ? "" : `  differs: ${paths.join(", ")}`;
}

/**
 * Replaces the signing key: the new public key is recorded in the ledger and that record is
 * signed by the old key, so anyone holding the old public key can follow the change.
 */
export async function ledgerRotateKeyCommand(options: GlobalOptions): Promise<number> {
  const { openLedger, paths } = await import("./commands.js");
  const ledger = await openLedger(paths(options), true);
  try {
    const { previous, next, seq } = await ledger.rotateKey(randomUUID());
    if (options.json) printDocument({ previous, next, seq });
    else {
      process.stdout.write(
        `ledger key rotated: record ${seq} names the new public key ${next}, signed with the old key ${previous}\nthe old secret is kept as ${ledger.keyFile}.old; remove it once you no longer need it\n`,
      );
    }
    return 0;
  } finally {
    await ledger.close();
  }
}

/**
 * Starts a new ledger after damage: the damaged one is kept, renamed, and the new one's first
 * record says why and where it went. Refused when the ledger is not damaged.
 */
export async function ledgerRepairCommand(options: GlobalOptions): Promise<number> {
  const { paths } = await import("./commands.js");
  const { repairLedger } = await import("../ledger/index.js");
  const where = paths(options);
  const repaired = await repairLedger(where.ledgerDir, { keyFile: where.keyFile });
  if (options.json) printDocument(repaired);
  else {
    process.stdout.write(
      `the damaged ledger was moved to ${repaired.movedTo} (with its checkpoint log and public key), untouched\ndamage: ${repaired.problem}\na new ledger starts at ${where.ledgerDir}; its record ${repaired.seq} says so\n`,
    );
  }
  return 0;
}
