/**
 * The schedules Incus 6.0 accepts and refuses, as its daemon answered `incus profile set P
 * snapshots.schedule=...` on this host: op refuses exactly the refused ones before any change.
 */
import { describe, expect, it } from "vitest";
import { madeBySchedule, scheduleProblem } from "./schedule.js";

describe("scheduleProblem", () => {
  it.each([
    "",
    "@hourly",
    "@DAILY",
    "@midnight",
    "@startup",
    "@never",
    "@hourly, @daily",
    "@daily, 0 6 * * *",
    "0 6 * * *",
    "*/5 * * * *",
    "5/15 * * * *",
    "0-59/15 * * * *",
    "0 6 ? * *",
    "0 6 * * MON",
    "0 6 * * mon-fri",
    "0 6 * JAN *",
    "0,30 1-3 1,15 * 0-6",
  ])("accepts %j", (schedule) => {
    expect(scheduleProblem(schedule)).toBeUndefined();
  });

  it.each([
    ["@hourly,@daily", /joined by ", "/],
    ["@bogus", /unknown alias/],
    ["@every 1h", /unknown alias/],
    ["bogus", /5 fields/],
    ["0 6 * *", /5 fields/],
    ["0 0 * * * *", /5 fields/],
    ["0  6 * * *", /5 fields/],
    [" 0 6 * * *", /5 fields/],
    ["61 * * * *", /minute "61": out of range \(0-59\)/],
    ["0 24 * * *", /hour "24": out of range/],
    ["0 0 0 * *", /day of month "0": out of range \(1-31\)/],
    ["0 0 1 13 *", /month "13": out of range/],
    ["0 6 * * 7", /day of week "7": out of range \(0-6\)/],
    ["0 6 * * L", /day of week "L": not a number or a name/],
    ["H 6 * * *", /minute "H": not a number$/],
    ["*/0 * * * *", /step of 0/],
    ["5-1 * * * *", /low to high/],
    ["1-2-3 * * * *", /N-M/],
    ["*/a * * * *", /step/],
  ])("refuses %j", (schedule, message) => {
    expect(scheduleProblem(schedule)).toMatch(message);
  });
});

describe("madeBySchedule", () => {
  it("knows Incus's default names and a custom pattern's, literally elsewhere", () => {
    expect(madeBySchedule("snap0")).toBe(true);
    expect(madeBySchedule("snap12")).toBe(true);
    expect(madeBySchedule("snapx")).toBe(false);
    expect(madeBySchedule("before-upgrade")).toBe(false);
    expect(madeBySchedule("auto-3", "auto-%d")).toBe(true);
    expect(madeBySchedule("snap3", "auto-%d")).toBe(false);
    expect(madeBySchedule("d-2026-12-02", "d-{{ creation_date|date:'2006-01-02' }}")).toBe(true);
    expect(madeBySchedule("a.b1", "a.b%d")).toBe(true);
    expect(madeBySchedule("axb1", "a.b%d")).toBe(false);
  });
});
