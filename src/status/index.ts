/**
 * The status document and the metrics file, as `op apply` and `op watch` use them: record a
 * run, mark or clear a flapping resource (each can rewrite the metrics file too), read it back.
 */
export { checkMetricsPath, type MetricsInput, renderMetrics, writeMetrics } from "./metrics.js";
export { type LedgerHead, renderStatus, type StatusView, statusJson } from "./report.js";
export {
  clearFlapping,
  type DriftByPlugin,
  type FlappingResource,
  type RecordOptions,
  type RunSummary,
  readStatus,
  recordRun,
  type StatusDocument,
  type StatusLocation,
  setFlapping,
} from "./status.js";
export { type FinishedRun, runSummary } from "./summary.js";
