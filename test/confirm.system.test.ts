/**
 * op apply --confirm and op confirm, through the built binary inside a namespace: an apply that
 * moves the uplink's address, a port and an nft table, left unconfirmed, is rolled back by the
 * detached watcher (the namespace's ip and nft dumps are then as before, byte for byte once
 * normalised), also when the op that applied is killed with SIGKILL right after arming; a
 * confirmed one is kept, its watcher ends, and a second op confirm says nothing is pending.
 * How soon after the deadline the rollback lands is the bench's to measure, not a test's.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { opBinary } from "./support/cli.js";
import { alive, confirmFiles, stop } from "./support/confirm.js";
import { before, createRollbackLab, moved, type RollbackLab } from "./support/rollback.js";

let lab: RollbackLab;

beforeEach(() => {
  lab = createRollbackLab();
});

afterEach(() => {
  // A watcher a failed test left behind is this test's own process: it is ended by its pid.
  const marker = readMarker();
  if (marker?.watcher !== undefined) stop(marker.watcher);
  lab.remove();
});

const { readMarker, lastOutcome } = confirmFiles(() => lab.sandbox.env.OP_LEDGER);

/** Waits until `done()` holds; a bound far above any deadline here keeps a bug from hanging. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (done()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting: ${what}`);
}

describe("op apply --confirm", () => {
  it("rolls an unconfirmed run back at its deadline; op confirm then says nothing is pending", async () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const run = lab.apply("moved.json", moved, "--allow-uplink", "--confirm", "2s");
    const marker = readMarker();
    expect(marker?.run).toBe(run);
    expect(alive(marker?.watcher ?? -1)).toBe(true);

    await until("the rollback", () => lastOutcome() !== undefined);
    const last = lastOutcome();
    expect(last).toMatchObject({ run, outcome: "rolled back" });
    expect(lab.dump()).toBe(was);
    expect(readMarker()).toBeUndefined();

    const late = lab.sandbox.op(["confirm", run.slice(0, 8)], { netns: lab.netns.name });
    expect(late.status).toBe(1);
    expect(late.stderr).toContain(
      `nothing is pending confirmation (the last was run ${run}: rolled back by run ${last?.by}`,
    );
    // The rollback is a run of the ledger of its own.
    expect(lab.op(["ledger", "log"]).stdout).toContain(last?.by?.slice(0, 8));
  });

  it("still rolls back when the op that applied is killed with its whole group", async () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    // The apply leads a process group of its own, as a login session's commands do.
    const child = spawn(
      "ip",
      ["netns", "exec", lab.netns.name, opBinary, "apply", lab.write("moved.json", moved)].concat([
        "--allow-uplink",
        "--confirm",
        "3s",
      ]),
      {
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin", ...lab.sandbox.env },
        detached: true,
        stdio: "ignore",
      },
    );
    await until("the deadline armed", () => readMarker()?.watcher !== undefined);
    const watcher = readMarker()?.watcher ?? -1;
    // kill -9 of op and of everything in its group (what a dropped session takes down).
    try {
      process.kill(-(child.pid ?? 0), "SIGKILL");
    } catch (error) {
      // The apply had already ended after arming: its group is empty.
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
    expect(alive(watcher)).toBe(true);

    await until("the rollback", () => lastOutcome() !== undefined);
    expect(lastOutcome()?.outcome).toBe("rolled back");
    expect(lab.dump()).toBe(was);
  });

  it("arms one of two --confirm applies that waited for the host lock together; the other is refused", async () => {
    lab.apply("before.json", before);
    // Another holder keeps the host lock while both start, so both pass their start together.
    const hostLock = lab.sandbox.env.OP_LOCK ?? "";
    const holder = spawn("flock", [hostLock, "sleep", "3"], { stdio: "ignore" });
    await until("the host lock held", () => existsSync(hostLock));
    const other = structuredClone(moved);
    const extra = other.plugins.network.interfaces.find((link) => link.name === "oprb-c");
    if (extra !== undefined) extra.mtu = 1300;
    const started = [moved, other].map((document, index) =>
      lab.sandbox.start(
        ["apply", lab.write(`race-${index}.json`, document), "--allow-uplink"].concat([
          "--confirm",
          "60s",
          "--lock-timeout",
          "30",
          "--json",
        ]),
        { netns: lab.netns.name },
      ),
    );
    const results = await Promise.all(started.map(({ done }) => done));
    holder.kill();
    const armed = results.filter((result) => result.status === 0);
    const refused = results.filter((result) => result.status !== 0);
    expect(armed, results.map((result) => result.stderr).join("\n")).toHaveLength(1);
    // With --json, op's error is the document on stdout.
    expect(refused[0]?.stdout).toContain("still awaits confirmation");
    const run = (JSON.parse(armed[0]?.stdout ?? "{}") as { run?: string }).run;
    expect(readMarker()?.run).toBe(run);
  });

  it("keeps a confirmed run: its watcher ends and a second op confirm finds nothing", async () => {
    lab.apply("before.json", before);
    const run = lab.apply("moved.json", moved, "--allow-uplink", "--confirm", "60s");
    const watcher = readMarker()?.watcher ?? -1;
    expect(alive(watcher)).toBe(true);

    // A second --confirm apply is refused while one awaits its confirmation.
    const second = lab.sandbox.op(
      ["apply", lab.write("before.json", before), "--allow-uplink", "--confirm", "60s"],
      { netns: lab.netns.name },
    );
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`run ${run} still awaits confirmation`);

    expect(lab.op(["confirm"]).stdout).toContain(`run ${run} confirmed`);
    await until("the watcher ended", () => !alive(watcher));
    expect(readMarker()).toBeUndefined();
    expect(lastOutcome()).toMatchObject({ run, outcome: "confirmed" });
    // Still as the run left it, and the ledger holds no other run than the two applies.
    const plan = JSON.parse(lab.op(["plan", lab.write("moved.json", moved), "--json"]).stdout);
    expect(plan.actions).toEqual([]);
    const runs = new Set(
      lab
        .op(["ledger", "log", "--json"])
        .stdout.trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as { run: string }).run),
    );
    expect(runs.size).toBe(2);
    expect(runs.has(run)).toBe(true);

    const again = lab.sandbox.op(["confirm"], { netns: lab.netns.name });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(
      `nothing is pending confirmation (the last was run ${run}: confirmed`,
    );
  });

  it("rolls back first at the next op start when the watcher is gone past the deadline", async () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const run = lab.apply("moved.json", moved, "--allow-uplink", "--confirm", "2s");
    const watcher = readMarker()?.watcher ?? -1;
    // As after a reboot: no one kept the deadline.
    stop(watcher);
    await until("the watcher gone", () => !alive(watcher));
    await until("the deadline passed", () => Date.parse(readMarker()?.deadline ?? "") < Date.now());

    const next = lab.sandbox.op(["confirm"], { netns: lab.netns.name });
    expect(next.stderr).toContain(`run ${run} was not confirmed by`);
    expect(next.status).toBe(1);
    expect(lastOutcome()).toMatchObject({ run, outcome: "rolled back" });
    expect(lab.dump()).toBe(was);
  });
});
