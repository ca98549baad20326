/**
 * `op status`: the last run, last drift, last error and flapping resources from the status
 * document, and the ledger's head. Reads only: the ledger through a view of its files
 * (src/ledger/read-only.ts), so it answers while an apply holds the ledger open, and changes
 * nothing on a read-only or full file system. A missing status file or ledger is said, not
 * an error: a host where op has not run yet has nothing to report.
 */
import { messageOf } from "../engine/reconcile.js";
import { parseCheckpoint } from "../ledger/checkpoint.js";
import { type LedgerHead, renderStatus, statusJson } from "../status/report.js";
import { readStatus } from "../status/status.js";
import { type GlobalOptions, ledgerIsThere, paths } from "./commands.js";
import { printDocument } from "./contract.js";
import { boundedLine } from "./output.js";

export async function statusCommand(options: GlobalOptions): Promise<number> {
  const statusFile = options.settings.statusFile;
  const [status, ledger] = [readStatus(statusFile), await readHead(options)];
  const view = { statusFile, ledger, ...(status === undefined ? {} : { status }) };
  if (options.json) printDocument(statusJson(view));
  else process.stdout.write(renderStatus(view, boundedLine));
  return 0;
}

async function readHead(options: GlobalOptions): Promise<LedgerHead> {
  const where = paths(options);
  const dir = where.ledgerDir;
  if (!ledgerIsThere(dir)) return { state: "missing", dir };
  try {
    const { Ledger } = await import("../ledger/index.js");
    const ledger = await Ledger.open(dir, { keyFile: where.keyFile, create: false, view: true });
    try {
      const [{ seq, hash }, text] = await Promise.all([ledger.head(), ledger.latestCheckpoint()]);
      const checkpoint = text === undefined ? undefined : parseCheckpoint(text);
      return {
        state: "ok",
        dir,
        seq,
        hash,
        ...(checkpoint === undefined
          ? {}
          : { checkpoint: { time: checkpoint.time, size: checkpoint.size } }),
      };
    } finally {
      await ledger.close();
    }
  } catch (error) {
    // A damaged ledger is still a status to show: verify is where it is examined.
    return { state: "unreadable", dir, message: messageOf(error) };
  }
}
