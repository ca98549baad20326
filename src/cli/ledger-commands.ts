/**
 * `op ledger` commands beyond reading: how a record is shown in `op ledger log`, and
 * `op ledger rotate-key`. (The reading commands are in commands.ts.)
 */
import { randomUUID } from "node:crypto";
import type { LedgerRecord } from "../ledger/index.js";
import type { GlobalOptions } from "./commands.js";

/**
 * One line of `op ledger log`. `unknown` (op could not tell whether the host changed) and
 * `settled` (a later run closed an intent, naming it) stand out from ok and failed.
 */
export function renderRecord(record: LedgerRecord): string {
  const status =
    record.status === "unknown"
      ? "UNKNOWN"
      : record.status === "settled"
        ? `settled #${record.settles}`
        : record.status;
  const error = record.error ? `  ${record.error}` : "";
  return `${String(record.seq).padStart(6)}  ${record.time}  ${record.run.slice(0, 8)}  ${status.padEnd(7)}  ${record.action.padEnd(6)}  ${record.plugin} ${record.target}${error}`;
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
    if (options.json) process.stdout.write(`${JSON.stringify({ previous, next, seq }, null, 2)}\n`);
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
  if (options.json) process.stdout.write(`${JSON.stringify(repaired, null, 2)}\n`);
  else {
    process.stdout.write(
      `the damaged ledger was moved to ${repaired.movedTo} (with its checkpoint log and public key), untouched\ndamage: ${repaired.problem}\na new ledger starts at ${where.ledgerDir}; its record ${repaired.seq} says so\n`,
    );
  }
  return 0;
}
