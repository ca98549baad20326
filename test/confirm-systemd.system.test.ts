/**
 * op apply --confirm where systemd is PID 1: the deadline is kept by a transient systemd timer
 * (src/cli/confirm-timer.ts), op confirm stops it, and a failing systemd-run falls back to the
 * detached watcher.
 *
 * THE systemd-run AND systemctl HERE ARE FAKES. This machine's PID 1 is not systemd, so the real
 * ones cannot make or stop a timer. The fakes (shell scripts put first on PATH) record their
 * arguments and exit 0, or fail when told to. And `/run/systemd/system`, the mark op looks for,
 * is made only inside a private mount namespace around the op under test (`unshare --mount`,
 * a tmpfs over /run/systemd), never on the host. What the real systemd would do at the deadline
 * (run the recorded command with only the --setenv environment, in the namespace named by
 * NetworkNamespacePath) the test does itself. So this shows what op asks of systemd and that
 * what it asks for rolls the run back; not that a real systemd takes it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "./support/cli.js";
import { alive, confirmFiles, stop } from "./support/confirm.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;
let fakeBin: string;
let fakeLog: string;

/** A fake tool: records its arguments (NUL-separated, one file a call) and exits as told. */
const fake = (tool: string) => `#!/bin/sh
# FAKE ${tool} for op's tests: PID 1 on this machine is not systemd, so the real one cannot work.
for a in "$@"; do printf '%s\\0' "$a"; done > "$OPRF_FAKE_LOG/${tool}.$$"
if [ -n "$OPRF_FAKE_FAIL" ]; then echo "$OPRF_FAKE_FAIL" >&2; exit 1; fi
exit 0
`;

beforeEach(() => {
  sandbox = createCliSandbox();
  netns = createNetns("sd", "oprf");
  fakeBin = join(sandbox.dir, "fake-bin");
  fakeLog = join(sandbox.dir, "fake-log");
  mkdirSync(fakeBin);
  mkdirSync(fakeLog);
  for (const tool of ["systemd-run", "systemctl"]) {
    writeFileSync(join(fakeBin, tool), fake(tool));
    chmodSync(join(fakeBin, tool), 0o755);
  }
});

afterEach(() => {
  // A watcher a failed test left behind is this test's own process: it is ended by its pid.
  const marker = readMarker();
  if (marker?.watcher !== undefined) stop(marker.watcher);
  netns.remove();
  sandbox.cleanup();
});

const { readMarker, lastOutcome } = confirmFiles(() => sandbox.env.OP_LEDGER);

const fakeEnv = (extra: Record<string, string> = {}) => ({
  PATH: `${fakeBin}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
  OPRF_FAKE_LOG: fakeLog,
  ...extra,
});

/**
 * `op ARGS` in the test's namespace, as on a host whose PID 1 is systemd: `/run/systemd/system`
 * exists in op's private mount namespace, and the fakes come first on PATH.
 */
function opUnderSystemd(args: string[], extra: Record<string, string> = {}) {
  const mark = 'mount -t tmpfs oprf-systemd /run/systemd && mkdir /run/systemd/system && exec "$@"';
  const result = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", mark, "sh"].concat([
      "ip",
      "netns",
      "exec",
      netns.name,
      opBinary,
      ...args,
    ]),
    { env: { ...sandbox.env, ...fakeEnv(extra) }, encoding: "utf8" },
  );
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The arguments of each call of a fake tool. */
function calls(tool: string): string[][] {
  return readdirSync(fakeLog)
    .filter((f) => f.startsWith(`${tool}.`))
    .map((f) => readFileSync(join(fakeLog, f), "utf8").split("\0").slice(0, -1));
}

/** What systemd would do when the timer elapses: the command, with only --setenv's variables, in its namespace. */
function fire(argv: string[], deadline?: string) {
  const command = argv.slice(argv.indexOf("--") + 1);
  if (deadline !== undefined) command[command.length - 1] = deadline;
  const env = Object.fromEntries(
    argv
      .filter((a) => a.startsWith("--setenv="))
      .map((a) => {
        const [name, ...value] = a.slice("--setenv=".length).split("=");
        return [name as string, value.join("=")];
      }),
  );
  const path = argv.find((a) => a.startsWith("--property=NetworkNamespacePath="))?.split("=")[2];
  expect(path).toBe(`/run/netns/${netns.name}`);
  const result = spawnSync("ip", ["netns", "exec", basename(path as string), ...command], {
    env,
    encoding: "utf8",
  });
  return { status: result.status ?? -1, stderr: result.stderr };
}

function write(name: string, links: string[]): string {
  const interfaces = links.map((n) => ({ name: n, type: "veth", veth: { peer: `${n}p` } }));
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { network: { interfaces } } }));
  return path;
}

const linkNames = () =>
  (JSON.parse(netns.run("ip", ["-j", "link", "show"])) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith("oprf-"))
    .sort();

function applyBefore(): void {
  const result = sandbox.op(["apply", write("before.json", ["oprf-a"])], { netns: netns.name });
  expect(result.status).toBe(0);
}

describe("op apply --confirm with systemd as PID 1 (fake systemd-run and systemctl)", () => {
  it("arms a transient timer whose command rolls the run back at the deadline", () => {
    applyBefore();
    const armed = opUnderSystemd([
      "apply",
      write("after.json", ["oprf-a", "oprf-b"]),
      "--confirm",
      "2s",
      "--json",
    ]);
    expect(armed.status, armed.stderr).toBe(0);
    const { run } = JSON.parse(armed.stdout) as { run: string };
    expect(armed.stderr).not.toContain("detached");

    const marker = readMarker();
    expect(marker?.run).toBe(run);
    expect(marker?.unit).toBe(`op-confirm-${run}`);
    expect(marker?.watcher).toBeUndefined();

    const [argv, ...more] = calls("systemd-run");
    expect(more).toEqual([]);
    expect(argv).toContain(`--unit=op-confirm-${run}`);
    expect(argv?.some((a) => /^--on-active=[12]s$/.test(a))).toBe(true);
    expect(argv).toContain("--timer-property=AccuracySec=100ms");
    expect(argv).toContain(`--setenv=OP_LOCK=${sandbox.env.OP_LOCK}`);
    // Where scripts/op found op's tree: the snapshot loads its native addon from there.
    expect(argv?.some((a) => a.startsWith("--setenv=OP_ROOT=/"))).toBe(true);
    expect(argv?.slice(-7)).toEqual([
      "--ledger",
      sandbox.env.OP_LEDGER,
      "--ledger-key",
      sandbox.env.OP_LEDGER_KEY,
      "confirm-deadline",
      run,
      marker?.deadline,
    ]);
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap", "oprf-b", "oprf-bp"]);

    // The timer elapses: systemd starts the service (it waits for the deadline if early).
    const fired = fire(argv as string[]);
    expect(fired.status, fired.stderr).toBe(0);
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap"]);
    expect(readMarker()).toBeUndefined();
    expect(lastOutcome()).toMatchObject({ run, outcome: "rolled back" });
  });

  it("op confirm stops the timer, and a timer that fires all the same changes nothing", () => {
    applyBefore();
    const armed = opUnderSystemd([
      "apply",
      write("after.json", ["oprf-a", "oprf-b"]),
      "--confirm",
      "600s",
      "--json",
    ]);
    expect(armed.status, armed.stderr).toBe(0);
    const { run } = JSON.parse(armed.stdout) as { run: string };

    const confirmed = sandbox.op(["confirm"], { netns: netns.name, env: fakeEnv() });
    expect(confirmed.status, confirmed.stderr).toBe(0);
    expect(calls("systemctl")).toEqual([["stop", `op-confirm-${run}.timer`]]);
    expect(readMarker()).toBeUndefined();

    // Had the stop failed, the service would start at the deadline: given a past one, it runs
    // now, finds no marker naming its run, and leaves the host alone.
    const fired = fire(calls("systemd-run")[0] as string[], new Date(0).toISOString());
    expect(fired.status, fired.stderr).toBe(0);
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap", "oprf-b", "oprf-bp"]);
    expect(lastOutcome()).toMatchObject({ run, outcome: "confirmed" });
  });

  it("falls back to the detached watcher when systemd-run fails", async () => {
    applyBefore();
    const armed = opUnderSystemd(
      ["apply", write("after.json", ["oprf-a", "oprf-b"]), "--confirm", "600s", "--json"],
      { OPRF_FAKE_FAIL: "Failed to connect to bus: No such file or directory" },
    );
    expect(armed.status, armed.stderr).toBe(0);
    expect(armed.stderr).toContain("a systemd timer cannot keep the deadline");
    expect(armed.stderr).toContain("Failed to connect to bus");
    expect(armed.stderr).toContain("a detached op process keeps it instead");
    const marker = readMarker();
    expect(marker?.unit).toBeUndefined();
    expect(marker?.watcher).toBeGreaterThan(0);
    expect(alive(marker?.watcher as number)).toBe(true);

    const confirmed = sandbox.op(["confirm"], { netns: netns.name, env: fakeEnv() });
    expect(confirmed.status, confirmed.stderr).toBe(0);
    expect(calls("systemctl")).toEqual([]);
    for (let i = 0; i < 100 && alive(marker?.watcher as number); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(alive(marker?.watcher as number)).toBe(false);
  });

  it("does not ask systemd where it is not PID 1, even with systemd-run on PATH", () => {
    applyBefore();
    const armed = sandbox.op(
      ["apply", write("after.json", ["oprf-a", "oprf-b"]), "--confirm", "600s"],
      { netns: netns.name, env: fakeEnv() },
    );
    expect(armed.status, armed.stderr).toBe(0);
    expect(calls("systemd-run")).toEqual([]);
    expect(readMarker()?.watcher).toBeGreaterThan(0);
    expect(sandbox.op(["confirm"], { netns: netns.name }).status).toBe(0);
  });
});
