/**
 * The metrics file, read back by a strict parser of the Prometheus text format written for
 * this test (no promtool here): every line must be HELP, TYPE or a sample of the family the
 * TYPE before it named, with names, label names, escapes and values as the format allows.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { makeTempDir, removeTempDirs } from "../ledger/testing.js";
import { checkMetricsPath, escapeLabel, renderMetrics, writeMetrics } from "./metrics.js";
import { emptyStatus, mergeRun, type StatusDocument } from "./status.js";

afterEach(removeTempDirs);

interface Sample {
  labels: Record<string, string>;
  value: number;
}
interface ParsedFamily {
  help: string;
  type: string;
  samples: Sample[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses the text format strictly; throws on the first line it does not accept. */
function parseExposition(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith("\n")) throw new Error("the text must end with a newline");
  const families = new Map<string, ParsedFamily>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split("\n");
  for (const [i, line] of lines.entries()) {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1} ${JSON.stringify(line)}: ${why}`);
    };
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name = "", rest = ""] = meta;
      if (!metricName.test(name)) fail("bad metric name");
      if (kind === "HELP") {
        if (families.has(name)) fail("HELP after the family started");
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) fail("bad escape in HELP");
        families.set(name, { help: rest, type: "", samples: [] });
        current = name;
      } else {
        const family = families.get(name);
        if (family === undefined || current !== name) fail("TYPE without its HELP just before");
        if (family?.type) fail("second TYPE");
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest))
          fail("bad type");
        if (family) family.type = rest;
      }
      continue;
    }
    if (line.startsWith("#") || line.trim() === "") fail("comment or blank line");
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) return fail("not a sample");
    const [, name = "", , labelText, valueText = ""] = sample;
    const family = families.get(name);
    if (family === undefined || current !== name || !family.type) fail("sample outside its family");
    const labels: Record<string, string> = {};
    let rest = labelText ?? "";
    while (rest.length > 0) {
      const pair = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (!pair) return fail(`bad labels at ${JSON.stringify(rest)}`);
      const [whole, key = "", escaped = ""] = pair;
      if (!labelName.test(key)) fail("bad label name");
      if (key in labels) fail("repeated label");
      labels[key] = escaped.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c));
      rest = rest.slice(whole.length);
    }
    if (!/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(valueText)) fail("bad value");
    const value =
      valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    family?.samples.push({ labels, value });
  }
  return families;
}

const hostile = 'evil"} 1\nop_runs_total{mode="apply"} 999 \\ \u00e9';

function statusWithDrift(): StatusDocument {
  let status = mergeRun(emptyStatus(), {
    time: "2026-12-01T10:00:00.000Z",
    mode: "check",
    file: "/etc/op/state.json",
    exit: 2,
    durationSeconds: 0.5,
    actions: 3,
    drift: { nftables: ["table inet/a", "table inet/b"], [hostile]: ["thing x"] },
  });
  status = mergeRun(status, {
    time: "2026-12-01T10:01:00.000Z",
    mode: "apply",
    file: "/etc/op/state.json",
    exit: 1,
    durationSeconds: 2.25,
    actions: 3,
    error: "1 action(s) failed",
  });
  return { ...status, flapping: [{ plugin: "lxc", id: "c1", since: "T", why: "fought" }] };
}

describe("renderMetrics", () => {
  it("gives every family with HELP and TYPE, counters per mode, drift per plugin", () => {
    const families = parseExposition(
      renderMetrics({ status: statusWithDrift(), ledgerRecords: 42 }),
    );
    expect([...families.keys()]).toEqual([
      "op_runs_total",
      "op_run_failures_total",
      "op_drift_resources",
      "op_last_success_timestamp_seconds",
      "op_apply_duration_seconds",
      "op_ledger_records",
      "op_flapping_resources",
    ]);
    const values = (name: string) =>
      families.get(name)?.samples.map(({ labels, value }) => [Object.values(labels).join(), value]);
    expect(families.get("op_runs_total")?.type).toBe("counter");
    expect(values("op_runs_total")).toEqual([
      ["check", 1],
      ["apply", 1],
    ]);
    expect(values("op_run_failures_total")).toEqual([
      ["check", 0],
      ["apply", 1],
    ]);
    expect(values("op_last_success_timestamp_seconds")).toEqual([
      ["", Date.parse("2026-12-01T10:00:00.000Z") / 1000],
    ]);
    expect(values("op_apply_duration_seconds")).toEqual([["", 2.25]]);
    expect(values("op_ledger_records")).toEqual([["", 42]]);
    expect(values("op_flapping_resources")).toEqual([["", 1]]);
  });

  it("escapes a hostile plugin name into one label value that reads back unchanged", () => {
    const text = renderMetrics({ status: statusWithDrift() });
    const drift = parseExposition(text).get("op_drift_resources")?.samples;
    expect(drift).toEqual([
      { labels: { plugin: hostile }, value: 1 },
      { labels: { plugin: "nftables" }, value: 2 },
    ]);
    // The newline in the name did not make a line of its own: one sample line per plugin.
    expect(text.split("\n").filter((line) => line.startsWith("op_drift_resources"))).toHaveLength(
      2,
    );
    expect(escapeLabel('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it("leaves out what is not known yet, still parseable", () => {
    const families = parseExposition(renderMetrics({ status: emptyStatus() }));
    expect(families.get("op_ledger_records")?.samples).toEqual([]);
    expect(families.get("op_last_success_timestamp_seconds")?.samples).toEqual([]);
    expect(families.get("op_drift_resources")?.samples).toEqual([]);
  });

  it("is checked by a parser that refuses what the format does not allow", () => {
    const good = "# HELP a x\n# TYPE a gauge\na 1\n";
    expect(parseExposition(good).get("a")?.samples).toEqual([{ labels: {}, value: 1 }]);
    for (const bad of [
      "# HELP a x\n# TYPE a gauge\na 1",
      '# HELP a x\n# TYPE a gauge\na{p="x\ny"} 1\n',
      '# HELP a x\n# TYPE a gauge\na{p="x\\q"} 1\n',
      "# HELP a x\n# TYPE a gauge\nb 1\n",
      "# HELP a x\n# TYPE a gauge\na one\n",
      "# HELP a x\na 1\n",
      '# HELP a x\n# TYPE a gauge\na{1p="x"} 1\n',
    ]) {
      expect(() => parseExposition(bad), JSON.stringify(bad)).toThrow();
    }
  });
});

describe("the metrics file", () => {
  it("is written whole (0644, no temporary file left) at a path with shell characters", async () => {
    const dir = await makeTempDir("metrics");
    const path = join(dir, "op $(touch pwned); `id` 'x' \"y\" & | > *.prom");
    writeMetrics(path, { status: statusWithDrift(), ledgerRecords: 7 });
    expect(readdirSync(dir)).toEqual([path.slice(dir.length + 1)]);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(parseExposition(readFileSync(path, "utf8")).get("op_ledger_records")?.samples).toEqual([
      { labels: {}, value: 7 },
    ]);
  });

  it("refuses a missing directory or a directory, naming the path and writing nothing", async () => {
    const dir = await makeTempDir("metrics");
    const refused = (path: string) => {
      try {
        writeMetrics(path, { status: emptyStatus() });
      } catch (error) {
        if (error instanceof OpError) return error;
        throw error;
      }
      throw new Error(`${path} was written`);
    };
    const missing = refused(join(dir, "no", "op.prom"));
    expect([missing.code, missing.message]).toEqual([
      "usage",
      `--metrics-file ${JSON.stringify(join(dir, "no", "op.prom"))}: ${join(dir, "no")} is not a directory`,
    ]);
    mkdirSync(join(dir, "op.prom"));
    expect(refused(join(dir, "op.prom")).message).toMatch(/op\.prom" is a directory$/);
    writeFileSync(join(dir, "plain"), "kept");
    expect(refused(join(dir, "plain", "op.prom")).message).toMatch(/plain is not a directory$/);
    expect(readdirSync(dir).sort()).toEqual(["op.prom", "plain"]);
    expect(readdirSync(join(dir, "op.prom"))).toEqual([]);
    expect(readFileSync(join(dir, "plain"), "utf8")).toBe("kept");
    expect(() => checkMetricsPath(join(dir, "fine.prom"))).not.toThrow();
  });
});
