/** A run's report as the status document takes it: what differs after it, and why it failed. */
import { describe, expect, it } from "vitest";
import type { RunReport } from "../engine/run.js";
import { createAction, modifyAction, runReport } from "../engine/testing.js";
import { OpError } from "../errors.js";
import { runSummary } from "./summary.js";

const now = new Date("2026-12-01T10:00:02.500Z");
const started = Date.parse("2026-12-01T10:00:00.000Z");
const report = (overrides: Partial<RunReport>): RunReport =>
  runReport({ mode: "check", ...overrides });

describe("runSummary", () => {
  it("takes a check's plan as the drift, per plugin, and its ledger run", () => {
    const actions = [createAction("nftables", "inet/a"), modifyAction("lxc", "c1")];
    expect(
      runSummary({
        mode: "check",
        file: "/etc/op/state.json",
        started,
        exit: 2,
        now,
        report: report({ actions, run: "r1", converged: false }),
      }),
    ).toEqual({
      time: "2026-12-01T10:00:02.500Z",
      mode: "check",
      file: "/etc/op/state.json",
      run: "r1",
      exit: 2,
      durationSeconds: 2.5,
      actions: 2,
      drift: { nftables: ["thing inet/a"], lxc: ["thing c1"] },
    });
  });

  it("takes an apply's verify as what differs after it; an apply that did not verify tells nothing", () => {
    const actions = [createAction("nftables", "inet/a")];
    const base = { mode: "apply" as const, file: "/s.json", started, now };
    expect(
      runSummary({ ...base, exit: 0, report: report({ actions, remaining: [] }) }).drift,
    ).toEqual({});
    expect(runSummary({ ...base, exit: 0, report: report({}) }).drift).toEqual({});
    const failed = new OpError("apply-failed", "1 action(s) failed, 0 skipped (run r2)");
    const summary = runSummary({
      ...base,
      exit: 1,
      report: report({ actions, converged: false, error: failed }),
    });
    expect(summary.drift).toBeUndefined();
    expect(summary.error).toBe("1 action(s) failed, 0 skipped (run r2)");
  });

  it("keeps what a run threw before it had a report, and makes the file's path absolute", () => {
    const summary = runSummary({
      mode: "check",
      file: "state.json",
      started,
      exit: 75,
      now,
      error: new OpError("locked", "another op apply is running (pid 42 holds /run/op/lock)"),
    });
    expect(summary).toMatchObject({
      exit: 75,
      actions: 0,
      error: expect.stringContaining("pid 42"),
    });
    expect(summary.file).toBe(`${process.cwd()}/state.json`);
    expect(summary.drift).toBeUndefined();
    expect(runSummary({ mode: "apply", file: "-", started, exit: 0, now }).file).toBe("-");
  });
});
