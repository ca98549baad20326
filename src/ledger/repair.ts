/**
 * `op ledger repair`: the one way op goes on after its ledger was found damaged, and only when
 * asked. The damaged ledger and its checkpoint log are kept, renamed, as evidence; a new
 * ledger starts whose first record names them, the damage found, and the last checkpoint the
 * old one had, and is signed at once. Nothing of the old ledger is changed or removed; its
 * public key is copied beside it (`<moved>.key.pub`).
 */
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import { OpError } from "../errors.js";
import { fileError, syncDirectory } from "../files.js";
import { checkpointLogPath, lastLoggedCheckpoint } from "./checkpoint-log.js";
import { Ledger, type LedgerOptions } from "./ledger.js";

export interface Repaired {
  /** Where the damaged ledger and its checkpoint log were moved. */
  movedTo: string;
  /** What was wrong with it. */
  problem: string;
  /** The new ledger's first record. */
  seq: number;
}

/**
 * Starts a new ledger in place of a damaged one. Refuses (code "not-found") when the ledger
 * is not damaged, so it can never be used to drop a good ledger's history.
 */
export async function repairLedger(
  dir: string,
  options: LedgerOptions,
  now: Date = new Date(),
): Promise<Repaired> {
  const problem = await damage(dir, options);
  if (problem === undefined) {
    throw new OpError("not-found", `the ledger ${dir} is not damaged: nothing to repair`, {
      hint: "`op ledger verify` checks all of it; repair only ever starts a new ledger after damage",
    });
  }
  const movedTo = `${dir}.damaged-${now.toISOString().replace(/[:.]/g, "-")}`;
  const log = checkpointLogPath(dir);
  const lastCheckpoint = lastLoggedCheckpoint(log) || undefined;
  try {
    if (existsSync(dir)) renameSync(dir, movedTo);
    if (existsSync(log)) renameSync(log, checkpointLogPath(movedTo));
    // The public key that checks the old checkpoints, kept beside them (the new ledger may
    // need a new key, whose public half replaces it).
    const publicKey = `${options.keyFile}.pub`;
    if (existsSync(publicKey)) copyFileSync(publicKey, `${movedTo}.key.pub`);
    syncDirectory(dirname(dir));
  } catch (error) {
    throw fileError(error, dir, `cannot move the damaged ledger to ${movedTo}`);
  }
  const ledger = await Ledger.open(dir, options);
  try {
    const { seq } = await ledger.append({
      run: randomUUID(),
      plugin: "ledger",
      action: "create",
      target: "ledger",
      status: "ok",
      changes: {
        replaces: movedTo,
        damage: problem,
        ...(lastCheckpoint === undefined ? {} : { lastCheckpoint }),
      },
    });
    await ledger.checkpoint();
    return { movedTo, problem, seq };
  } finally {
    await ledger.close();
  }
}

/** Why the ledger cannot be written to, or undefined when it can. */
async function damage(dir: string, options: LedgerOptions): Promise<string | undefined> {
  if (!existsSync(dir) && !lastLoggedCheckpoint(checkpointLogPath(dir))) {
    throw new OpError("not-found", `there is no ledger at ${dir}`, {
      hint: "check the --ledger path",
    });
  }
  try {
    const ledger = await Ledger.open(dir, options);
    await ledger.close();
    return undefined;
  } catch (error) {
    if (error instanceof OpError && error.code === "ledger-corrupt") return error.message;
    throw error;
  }
}
