/**
 * `op watch` logs one line per event or decision to stderr. Text is `key=value` pairs, the
 * form journald and log shippers split without a parser (journald adds the time); json is one
 * object per line, with its time, for machines.
 */
export type LogFormat = "text" | "json";

export type LogValue = string | number | boolean | readonly string[] | undefined;

/** `log("run-start", { reason: "hint", plugins: ["network"] })`; undefined fields are left out. */
export type WatchLog = (event: string, fields?: Readonly<Record<string, LogValue>>) => void;

export function createLog(
  format: LogFormat,
  write: (line: string) => void,
  now: () => Date = () => new Date(),
): WatchLog {
  return (event, fields = {}) => {
    const defined = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (format === "json") {
      write(
        `${JSON.stringify({ time: now().toISOString(), event, ...Object.fromEntries(defined) })}\n`,
      );
      return;
    }
    const pairs = defined.map(([key, value]) => `${key}=${textValue(value)}`);
    write(`${[`event=${event}`, ...pairs].join(" ")}\n`);
  };
}

/** A bare word when it is one; otherwise quoted, with control characters escaped (one line). */
function textValue(value: LogValue): string {
  const text = Array.isArray(value) ? value.join(",") : String(value);
  return /^[\w./:@,+-]+$/.test(text) ? text : JSON.stringify(text);
}
