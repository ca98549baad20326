export { type Checkpoint, parseCheckpoint } from "./checkpoint.js";
export {
  Ledger,
  type LedgerOptions,
  type LedgerRecord,
  type PendingIntent,
  type RecordFilter,
  type RecordInput,
  type RecordStatus,
} from "./ledger.js";
export { type Repaired, repairLedger } from "./repair.js";
export type { VerifyReport } from "./verify.js";
