import { describe, expect, it } from "vitest";
import type { LedgerRecord } from "../ledger/index.js";
import { renderRecord } from "./ledger-commands.js";

const record = (overrides: Partial<LedgerRecord>): LedgerRecord => ({
  seq: 12,
  time: "2026-12-01T10:00:00.000Z",
  host: "h",
  run: "3df1a2b4c5",
  plugin: "lxc",
  action: "create",
  target: "ct100",
  status: "ok",
  ...overrides,
});

describe("op ledger log lines", () => {
  it("show unknown and settled outcomes apart from ok and failed", () => {
    expect(renderRecord(record({}))).toBe(
      "    12  2026-12-01T10:00:00.000Z  3df1a2b4  ok       create  lxc ct100",
    );
    expect(renderRecord(record({ status: "unknown", error: "Incus went away" }))).toBe(
      "    12  2026-12-01T10:00:00.000Z  3df1a2b4  UNKNOWN  create  lxc ct100  Incus went away",
    );
    expect(renderRecord(record({ seq: 20, status: "settled", settles: 12 }))).toBe(
      "    20  2026-12-01T10:00:00.000Z  3df1a2b4  settled #12  create  lxc ct100",
    );
  });

  it("show drift and flapping records as observations, with the fields a drift names", () => {
    const changes = [
      { path: "chains.input.policy", before: "accept", after: "drop" },
      { path: "mtu", before: 1500, after: 9000 },
    ];
    expect(renderRecord(record({ status: "drift", action: "modify", changes }))).toBe(
      "    12  2026-12-01T10:00:00.000Z  3df1a2b4  DRIFT    modify  lxc ct100  differs: chains.input.policy, mtu",
    );
    expect(renderRecord(record({ status: "drift", changes: { after: { name: "ct100" } } }))).toBe(
      "    12  2026-12-01T10:00:00.000Z  3df1a2b4  DRIFT    create  lxc ct100",
    );
    expect(
      renderRecord(
        record({ status: "flapping", action: "modify", error: "reverted 5 times in 2m" }),
      ),
    ).toBe(
      "    12  2026-12-01T10:00:00.000Z  3df1a2b4  FLAPPING  modify  lxc ct100  reverted 5 times in 2m",
    );
  });
});
