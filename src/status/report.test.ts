/** `op status` text and JSON from a status document and a ledger head. */
import { describe, expect, it } from "vitest";
import { boundedLine } from "../cli/output.js";
import { renderStatus, statusJson } from "./report.js";
import { emptyStatus, mergeRun, withFlapping } from "./status.js";

const checked = mergeRun(emptyStatus(), {
  time: "2026-12-01T10:00:00.000Z",
  mode: "check",
  file: "/etc/op/state.json",
  run: "3df1a2b4-0000",
  exit: 2,
  durationSeconds: 0.42,
  actions: 2,
  drift: { nftables: ["table inet/a"], lxc: ["container c1"] },
});
const status = withFlapping(
  mergeRun(checked, {
    time: "2026-12-01T10:05:00.000Z",
    mode: "apply",
    file: "/etc/op/state\u001b[2J.json",
    exit: 1,
    durationSeconds: 3,
    actions: 2,
    drift: {},
    error: "1 action(s) failed, 0 skipped",
  }),
  {
    plugin: "network",
    id: "br0",
    since: "2026-12-01T10:06:00.000Z",
    why: "reverted 5 times in 2m",
  },
);
const head = {
  state: "ok" as const,
  dir: "/var/lib/op/ledger",
  seq: 42,
  hash: "656f8276c228613a952c2f583012571496e32f0743c27b8d7ecb1f50d8f5178b",
  checkpoint: { time: "2026-12-01T10:05:00.000Z", size: 42 },
};

describe("op status", () => {
  it("shows the last run, drift, error, flapping resources, counters and the ledger head", () => {
    expect(renderStatus({ statusFile: "/s.json", status, ledger: head }, boundedLine)).toBe(
      [
        "last run:   2026-12-01T10:05:00.000Z  apply /etc/op/state\\u001b[2J.json  exit 1  3.0 s  2 action(s)",
        "last drift: 2026-12-01T10:00:00.000Z  check /etc/op/state.json  run 3df1a2b4-0000",
        "  nftables: table inet/a",
        "  lxc: container c1",
        "  since then (2026-12-01T10:05:00.000Z): the host matches the file",
        "last error: 2026-12-01T10:05:00.000Z  apply /etc/op/state\\u001b[2J.json: 1 action(s) failed, 0 skipped",
        "flapping:   1 resource(s) not enforced",
        "  network br0 since 2026-12-01T10:06:00.000Z: reverted 5 times in 2m",
        "runs:       apply 1 (1 failed), check 1 (0 failed)",
        "ledger:     /var/lib/op/ledger: 42 record(s), head 42 656f8276c228613a…, last checkpoint 2026-12-01T10:05:00.000Z at record 42",
        "",
      ].join("\n"),
    );
  });

  it("says what is missing instead of failing: no status yet, no ledger, an unreadable one", () => {
    expect(renderStatus({ statusFile: "/s.json", ledger: { state: "missing", dir: "/l" } })).toBe(
      "status:     no run recorded yet in /s.json (every op apply writes it)\nledger:     no ledger at /l yet (op creates it on the first op apply that changes something)\n",
    );
    expect(
      renderStatus({
        statusFile: "/s.json",
        status: emptyStatus(),
        ledger: { state: "unreadable", dir: "/l", message: "record 3: bad hash" },
      }),
    ).toContain("ledger:     /l: cannot read it: record 3: bad hash (op ledger verify says more)");
  });

  it("gives every field in --json, null when not known", () => {
    expect(statusJson({ statusFile: "/s.json", ledger: { state: "missing", dir: "/l" } })).toEqual({
      statusFile: "/s.json",
      recorded: false,
      lastRun: null,
      lastSuccess: null,
      lastDrift: null,
      drift: null,
      lastError: null,
      flapping: [],
      runs: {},
      failures: {},
      ledger: { state: "missing", dir: "/l" },
    });
    const json = statusJson({ statusFile: "/s.json", status, ledger: head });
    expect(json).toMatchObject({
      recorded: true,
      lastDrift: { resources: { nftables: ["table inet/a"], lxc: ["container c1"] } },
      flapping: [{ plugin: "network", id: "br0" }],
      ledger: { seq: 42, checkpoint: { size: 42 } },
    });
  });
});
