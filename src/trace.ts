import { tracing } from "./host/settings.js";

/**
 * `OP_TRACE=1 op …` prints one stderr line per phase — milliseconds since the process started
 * and what happened — so a slow run can be taken apart on the machine where it is slow.
 */
export function trace(event: string): void {
  if (tracing()) process.stderr.write(`op-trace ${performance.now().toFixed(1)} ms ${event}\n`);
}

/** Traces the start and end of `work`, named `event`. */
export async function traced<T>(event: string, work: () => Promise<T>): Promise<T> {
  trace(`${event} start`);
  try {
    return await work();
  } finally {
    trace(`${event} end`);
  }
}
