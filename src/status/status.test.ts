/** The status document: how runs merge into it, flapping marks, and its file on disk. */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDirs } from "../ledger/testing.js";
import { acquireLock } from "../lock.js";
import {
  clearFlapping,
  emptyStatus,
  mergeRun,
  type RunSummary,
  readStatus,
  recordRun,
  setFlapping,
} from "./status.js";

afterEach(removeTempDirs);

const run = (overrides: Partial<RunSummary>): RunSummary => ({
  time: "2026-12-01T10:00:00.000Z",
  mode: "apply",
  file: "/etc/op/state.json",
  exit: 0,
  durationSeconds: 1.5,
  actions: 2,
  ...overrides,
});

describe("mergeRun", () => {
  it("counts runs and failures per mode; a check's drift (exit 2) is not a failure", () => {
    let status = emptyStatus();
    status = mergeRun(
      status,
      run({ mode: "check", exit: 2, drift: { nftables: ["table inet/t"] } }),
    );
    status = mergeRun(status, run({ mode: "apply", exit: 1, error: "1 action(s) failed" }));
    status = mergeRun(status, run({ mode: "apply", exit: 0, drift: {} }));
    status = mergeRun(
      status,
      run({ mode: "check", exit: 75, error: "another op apply is running" }),
    );
    expect(status.runs).toEqual({ check: 2, apply: 2 });
    expect(status.failures).toEqual({ apply: 1, check: 1 });
  });

  it("keeps the last drift found when later runs find none, and says what differs now", () => {
    const found = mergeRun(
      emptyStatus(),
      run({ time: "T1", mode: "check", exit: 2, run: "r1", drift: { lxc: ["container c1"] } }),
    );
    const fixed = mergeRun(found, run({ time: "T2", mode: "apply", exit: 0, drift: {} }));
    expect(fixed.lastDrift).toEqual({
      time: "T1",
      mode: "check",
      file: "/etc/op/state.json",
      run: "r1",
      resources: { lxc: ["container c1"] },
    });
    expect(fixed.drift).toEqual({ time: "T2", resources: {} });
    // A run that tells nothing about drift (it failed before reading the host) leaves it.
    const failed = mergeRun(fixed, run({ time: "T3", exit: 1, error: "bad file" }));
    expect(failed.drift).toEqual(fixed.drift);
  });

  it("keeps the last error and the last success apart, and the last apply's duration", () => {
    let status = mergeRun(emptyStatus(), run({ time: "T1", durationSeconds: 4 }));
    status = mergeRun(status, run({ time: "T2", mode: "check", exit: 1, error: "Incus is down" }));
    expect(status.lastSuccess).toBe("T1");
    expect(status.lastApplySeconds).toBe(4);
    expect(status.lastError).toEqual({
      time: "T2",
      mode: "check",
      file: "/etc/op/state.json",
      message: "Incus is down",
    });
    expect(status.lastRun).toEqual({
      time: "T2",
      mode: "check",
      file: "/etc/op/state.json",
      exit: 1,
      durationSeconds: 1.5,
      actions: 2,
    });
    // An error without a message still says how the run ended.
    expect(mergeRun(status, run({ time: "T3", exit: 70 })).lastError?.message).toBe("exit 70");
  });
});

describe("the status file", () => {
  it("is written whole, 0600, read back, and updated run after run", async () => {
    const dir = await makeTempDir("status");
    const path = join(dir, "sub", "status.json");
    expect(readStatus(path)).toBeUndefined();
    await recordRun(path, run({ mode: "check", exit: 2, drift: { nftables: ["table inet/t"] } }));
    await recordRun({ statusFile: path }, run({ exit: 0, drift: {} }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const status = readStatus(path);
    expect(status?.runs).toEqual({ check: 1, apply: 1 });
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(status);
    // Nothing but the document and its lock is left in the directory (no temporary file).
    expect(readdirSync(join(dir, "sub")).sort()).toEqual(["status.json", "status.json.lock"]);
  });

  it("is changed by one writer at a time: a run waits while another holds its lock", async () => {
    const path = join(await makeTempDir("status"), "status.json");
    await recordRun(path, run({}));
    const held = await acquireLock(`${path}.lock`, { timeoutSeconds: 0 });
    let written = false;
    const waiting = recordRun(path, run({})).then(() => {
      written = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written).toBe(false);
    expect(readStatus(path)?.runs).toEqual({ apply: 1 });
    held.release();
    await waiting;
    expect(readStatus(path)?.runs).toEqual({ apply: 2 });
  });

  it("marks flapping resources once each, and clears one or all", async () => {
    const path = join(await makeTempDir("status"), "status.json");
    const br0 = { plugin: "network", id: "br0", since: "T1", why: "reverted 5 times in 2m" };
    await setFlapping(path, br0);
    await setFlapping(path, { ...br0, since: "T2" });
    await setFlapping(path, { plugin: "lxc", id: "c1", since: "T3", why: "stopped 6 times" });
    expect(readStatus(path)?.flapping.map((f) => `${f.plugin}/${f.id}@${f.since}`)).toEqual([
      "network/br0@T2",
      "lxc/c1@T3",
    ]);
    await clearFlapping(path, { plugin: "lxc", id: "c1" });
    expect(readStatus(path)?.flapping.map((f) => f.id)).toEqual(["br0"]);
    // The watch rewrites the metrics file with each mark, as a run does.
    const metrics = join(dirname(path), "op.prom");
    await clearFlapping(path, undefined, { metricsFile: metrics, ledgerRecords: 3 });
    expect(readStatus(path)?.flapping).toEqual([]);
    expect(readFileSync(metrics, "utf8")).toContain("\nop_flapping_resources 0\n");
    await setFlapping(path, br0, { metricsFile: metrics });
    expect(readFileSync(metrics, "utf8")).toContain("\nop_flapping_resources 1\n");
  });

  it("refuses to read garbage as a status, and a run starts a damaged one again", async () => {
    const dir = await makeTempDir("status");
    const path = join(dir, "status.json");
    writeFileSync(path, "{not json");
    expect(() => readStatus(path)).toThrow(/is not an op status document/);
    await recordRun(path, run({}));
    expect(readStatus(path)?.runs).toEqual({ apply: 1 });
  });

  it("names the path when its directory cannot be made, writing nothing", async () => {
    const dir = await makeTempDir("status");
    writeFileSync(join(dir, "file"), "x");
    await expect(recordRun(join(dir, "file", "status.json"), run({}))).rejects.toThrow(
      /file.*(not a directory|ENOTDIR|EEXIST)/,
    );
    mkdirSync(join(dir, "status.json"));
    await expect(recordRun(join(dir, "status.json"), run({}))).rejects.toThrow(/status\.json/);
  });
});
