/**
 * `op watch` as a user runs it: the built binary as a child process, on real daemons, with its
 * ledger and lock in a sandbox. Each kind of drift is made by hand and the test waits (polling,
 * bounded) for the watch to put it back. The network and nftables objects live in a test
 * network namespace (`opt-opw-…`), named `opw…`; the container test, whose bridges must be
 * where Incus is, uses `opw`-prefixed bridges on the host and an `optest-` container.
 * A resync period of an hour makes sure what is corrected was corrected on its event.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type CliFinished, type CliSandbox, createCliSandbox } from "./support/cli.js";
import { allBut } from "./support/ignore.js";
import {
  createOvsBridge,
  incus,
  instance,
  linkInfo,
  ovsPorts,
  removeBridge,
  removeContainers,
  sh,
  testEntry,
} from "./support/lxc.js";
import { createNetns, type TestNetns } from "./support/netns.js";

/**
 * For a second after a run, events about what it changed are taken as its own echo and
 * dropped (the next resync would catch a real change): drift made by hand waits this out.
 */
const pastEchoWindow = () => new Promise((resolve) => setTimeout(resolve, 1500));

/** Why each run that corrected `plugin id` ran ("start", "hint", "resync"...), in order. */
function correctedBy(events: readonly LogEvent[], plugin: string, id: string): unknown[] {
  let reason: unknown;
  const reasons: unknown[] = [];
  for (const e of events) {
    if (e.event === "run-start") reason = e.reason;
    if (e.event === "corrected" && e.plugin === plugin && e.id === id) reasons.push(reason);
  }
  return reasons;
}

interface LogEvent {
  event: string;
  [field: string]: unknown;
}

/** Polls `check` until it holds; a bounded wait, not a timing assertion. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A running `op watch` with its JSON log parsed as it comes. */
function startWatch(sandbox: CliSandbox, file: string, args: string[], netns?: string) {
  const { child, done } = sandbox.start(
    ["watch", file, "--log-format", "json", "--resync", "60", ...args],
    netns === undefined ? {} : { netns },
  );
  const events: LogEvent[] = [];
  let partial = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    partial += chunk.toString();
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") events.push(JSON.parse(line) as LogEvent);
  });
  const matching = (event: string, fields: Record<string, unknown> = {}) =>
    events.filter((e) => e.event === event && Object.entries(fields).every(([k, v]) => e[k] === v));
  return {
    child,
    done,
    events,
    matching,
    /** Waits for the n-th event matching. */
    waitFor: (event: string, fields: Record<string, unknown> = {}, count = 1) =>
      until(
        `${count} × ${event} ${JSON.stringify(fields)}`,
        () => matching(event, fields).length >= count,
      ),
    async stop(): Promise<CliFinished> {
      child.kill("SIGTERM");
      return done;
    },
  };
}

type Watching = ReturnType<typeof startWatch>;

interface Exported {
  status: string;
  plugin: string;
  target: string;
  action: string;
  run: string;
}

/** `op status --json` of the sandbox. */
function status(sandbox: CliSandbox): {
  flapping: { plugin: string; id: string }[];
  runs: Record<string, number>;
  lastDrift: { resources: Record<string, string[]> } | null;
} {
  const out = sandbox.op(["status", "--json"]);
  expect(out.status, out.stderr).toBe(0);
  return JSON.parse(out.stdout);
}

/** A sample of the metrics file, e.g. `op_flapping_resources` or `op_runs_total{mode="apply"}`. */
function metric(path: string, sample: string): number | undefined {
  const line = readFileSync(path, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

function ledgerRecords(sandbox: CliSandbox): Exported[] {
  const out = sandbox.op(["ledger", "export"]);
  expect(out.status, out.stderr).toBe(0);
  return out.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Exported & { seq?: number })
    .filter((record) => record.seq !== undefined);
}

describe("op watch in a network namespace", () => {
  let sandbox: CliSandbox;
  let netns: TestNetns;
  let watching: Watching | undefined;
  const bridge = "opw0";
  const table = "opw_t";

  beforeEach(() => {
    sandbox = createCliSandbox();
    netns = createNetns("opw");
    netns.run("ip", ["link", "set", "lo", "up"]);
  });
  afterEach(async () => {
    if (watching !== undefined && watching.child.exitCode === null) {
      watching.child.kill("SIGKILL");
      await watching.done;
    }
    watching = undefined;
    netns.remove();
    sandbox.cleanup();
  });

  function stateFile(addresses = ["198.18.210.1"], rule = "ip saddr 198.18.66.0/24 counter drop") {
    const file = join(sandbox.dir, "state.json");
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        plugins: {
          network: {
            interfaces: [
              {
                name: bridge,
                type: "linux-bridge",
                ipv4: { addresses: addresses.map((ip) => ({ ip, prefix: 24 })) },
              },
            ],
          },
          nftables: {
            tables: [
              {
                family: "inet",
                name: table,
                chains: [
                  {
                    name: "input",
                    type: "filter",
                    hook: "input",
                    priority: 0,
                    policy: "accept",
                    rules: [rule],
                  },
                ],
              },
            ],
          },
        },
      }),
    );
    return file;
  }

  const tableThere = () =>
    spawnSync("ip", ["netns", "exec", netns.name, "nft", "list", "table", "inet", table]).status ===
    0;
  const addresses = () => {
    const out = spawnSync("ip", ["-n", netns.name, "-j", "-4", "addr", "show", "dev", bridge], {
      encoding: "utf8",
    });
    if (out.status !== 0) return [];
    const [link] = JSON.parse(out.stdout) as { addr_info: { local: string }[] }[];
    return (link?.addr_info ?? []).map((a) => a.local);
  };
  const start = async (file: string, args: string[] = []) => {
    const w = startWatch(sandbox, file, args, netns.name);
    watching = w;
    await w.waitFor("run-end", { reason: "start" });
    expect(w.matching("run-end", { reason: "start" })[0]?.ok).toBe(true);
    await pastEchoWindow();
    return w;
  };

  it("puts back a deleted nft table, a removed address and a deleted bridge on their events", async () => {
    const metrics = join(sandbox.dir, "op.prom");
    const w = await start(stateFile(), ["--metrics-file", metrics]);
    expect(tableThere()).toBe(true);
    expect(addresses()).toEqual(["198.18.210.1"]);

    netns.run("nft", ["delete", "table", "inet", table]);
    await until("the table is back", tableThere);
    await pastEchoWindow();
    netns.run("ip", ["addr", "del", "198.18.210.1/24", "dev", bridge]);
    await until("the address is back", () => addresses().includes("198.18.210.1"));
    await pastEchoWindow();
    netns.run("ip", ["link", "del", bridge]);
    await until("the bridge and its address are back", () => addresses().includes("198.18.210.1"));

    // Each came back by a run the event started, not by a resync (an hour away). (A run logs
    // what it corrected once it has verified and recorded it: after the host shows it.)
    await w.waitFor("corrected", { plugin: "network", id: bridge }, 3);
    expect(w.matching("run-start", { reason: "resync" })).toEqual([]);
    expect(w.matching("corrected", { plugin: "nftables", id: `inet/${table}` }).length).toBe(2);
    expect(w.matching("corrected", { plugin: "network", id: bridge }).length).toBe(3);
    const finished = await w.stop();
    expect(finished.status, finished.stderr).toBe(0);
    expect(w.matching("stopped")).toHaveLength(1);
    // Each correction is in the ledger, as an apply's would be.
    const oks = ledgerRecords(sandbox).filter((r) => r.status === "ok");
    expect(oks.filter((r) => r.target === `inet/${table}`)).toHaveLength(2);
    expect(oks.filter((r) => r.target === bridge)).toHaveLength(3);
    // Every run is in the status and the metrics, as op apply's are.
    const runs = w.matching("run-end").length;
    expect(status(sandbox).runs.apply).toBe(runs);
    expect(metric(metrics, 'op_runs_total{mode="apply"}')).toBe(runs);
    expect(metric(metrics, "op_flapping_resources")).toBe(0);
  });

  it("re-reads the file on SIGHUP, and keeps the old one when the new one is invalid", async () => {
    const w = await start(stateFile());
    const file = stateFile(["198.18.210.1", "198.18.211.1"]);
    w.child.kill("SIGHUP");
    await until("the new file's address is there", () => addresses().includes("198.18.211.1"));
    expect(w.matching("reload", { changed: true })).toHaveLength(1);
    await pastEchoWindow();

    writeFileSync(file, JSON.stringify({ version: 1, plugins: { nftabels: {} } }));
    w.child.kill("SIGHUP");
    await w.waitFor("reload-refused");
    expect(String(w.matching("reload-refused")[0]?.error)).toMatch(/did you mean "nftables"/);
    // Still watching, with the file it had: an address removed by hand comes back.
    netns.run("ip", ["addr", "del", "198.18.211.1/24", "dev", bridge]);
    await until("the address of the kept file is back", () => addresses().includes("198.18.211.1"));
    expect((await w.stop()).status).toBe(0);
  });

  it("stops fighting a resource something else keeps undoing, records it, and enforces it again once the file changes", async () => {
    const metrics = join(sandbox.dir, "op.prom");
    // Three corrections in ten minutes make a resource flapping here (the default is 5/10).
    const w = await start(stateFile(), ["--metrics-file", metrics, "--flapping", "3/10"]);
    // Another manager: deletes the table each time op has put it back (after op's own
    // echo window, so that each deletion is seen as someone else's).
    for (let fight = 0; fight < 3; fight++) {
      await until("op puts the table back", tableThere);
      await pastEchoWindow();
      netns.run("nft", ["delete", "table", "inet", table]);
    }
    // The third correction (the start run's does not count) makes it flapping.
    await w.waitFor("flapping", { plugin: "nftables", id: `inet/${table}` });
    expect(w.matching("corrected", { plugin: "nftables" })).toHaveLength(1 + 3);
    // The fight goes on: op no longer answers it.
    const runsAtFlap = w.matching("run-start").length;
    await until("op's last correction", tableThere);
    netns.run("nft", ["delete", "table", "inet", table]);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(tableThere()).toBe(false);
    expect(w.matching("corrected", { plugin: "nftables" })).toHaveLength(1 + 3);
    // No storm: the start, one run per deletion, and a few for the namespace's own events (the
    // bridge's IPv6 link-local address and carrier come a second or two after it is made).
    expect(runsAtFlap).toBeLessThanOrEqual(1 + 3 + 4);
    expect(w.matching("run-start").length - runsAtFlap).toBeLessThanOrEqual(1);
    await w.waitFor("flapping-recorded");
    await until("op status shows it", () => status(sandbox).flapping.length === 1);
    expect(status(sandbox).flapping).toMatchObject([{ plugin: "nftables", id: `inet/${table}` }]);
    expect(metric(metrics, "op_flapping_resources")).toBe(1);

    // A changed file forgives it.
    stateFile(["198.18.210.1"], "ip saddr 198.18.67.0/24 counter drop");
    w.child.kill("SIGHUP");
    await until("the table is enforced again", tableThere);
    expect(status(sandbox).flapping).toEqual([]);
    expect(metric(metrics, "op_flapping_resources")).toBe(0);
    expect((await w.stop()).status).toBe(0);
    const flapping = ledgerRecords(sandbox).filter((r) => r.status === "flapping");
    expect(flapping.map((r) => [r.plugin, r.target])).toEqual([["nftables", `inet/${table}`]]);
  });

  it("resubscribes a source whose monitor died, and corrects on its events again", async () => {
    const w = await start(stateFile());
    const pid = Number(w.matching("start")[0]?.pid);
    // The watch's own `nft monitor` child (this test started the watch, so the child is ours).
    const monitor = spawnSync("pgrep", ["-P", String(pid), "-f", "nft -j monitor"], {
      encoding: "utf8",
    }).stdout.trim();
    expect(monitor).toMatch(/^\d+$/);
    process.kill(Number(monitor), "SIGKILL");
    await w.waitFor("source-error", { source: "nft" });
    // Resubscribed after its back-off (1 s): a table deleted now comes back on the event.
    await until(
      "nft monitor runs again",
      () => spawnSync("pgrep", ["-P", String(pid), "-f", "nft -j monitor"]).status === 0,
    );
    netns.run("nft", ["delete", "table", "inet", table]);
    await until("the table is back", tableThere);
    await w.waitFor("corrected", { plugin: "nftables", id: `inet/${table}` }, 2);
    expect(correctedBy(w.events, "nftables", `inet/${table}`)).toEqual(["start", "hint"]);
    expect((await w.stop()).status).toBe(0);
  });

  it("prunes what the file dropped but leaves what its ignore list matches", async () => {
    // op makes three veth pairs; the file then keeps one, ignores one and drops the third.
    const veth = (name: string) => ({ name, type: "veth", veth: { peer: `${name}p` } });
    const plugins = (interfaces: unknown[], extra: Record<string, unknown> = {}) =>
      JSON.stringify({ version: 1, plugins: { network: { interfaces, ...extra } } });
    const file = join(sandbox.dir, "pruned.json");
    writeFileSync(file, plugins([veth("opwv0"), veth("opwkeep0"), veth("opwgone0")]));
    const made = sandbox.op(["apply", file], { netns: netns.name });
    expect(made.status, made.stderr).toBe(0);
    // Prune sees Open vSwitch's bridges host-wide: everything outside this test's names is ignored.
    const ignore = [...allBut("opw"), "opwkeep*"];
    writeFileSync(file, plugins([veth("opwv0")], { prune: true, ignore }));
    const w = await start(file);
    expect(linkInfoIn(netns, "opwgone0")).toBe(false);
    expect([linkInfoIn(netns, "opwkeep0"), linkInfoIn(netns, "opwv0")]).toEqual([true, true]);
    expect((await w.stop()).status).toBe(0);
  });

  it("with --observe, reports drift and changes nothing, recording it once while it lasts", async () => {
    // A resync every 3 s: the same drift found again is not recorded again.
    const w = startWatch(sandbox, stateFile(), ["--observe", "--resync", "0.05"], netns.name);
    watching = w;
    await w.waitFor("run-end", { reason: "start" });
    expect(w.matching("drift").map((e) => [e.plugin, e.id])).toEqual([
      ["network", bridge],
      ["nftables", `inet/${table}`],
    ]);
    expect(tableThere()).toBe(false);
    expect(linkInfoIn(netns, bridge)).toBe(false);
    expect(w.matching("corrected")).toEqual([]);
    await until("two resyncs", () => w.matching("run-end", { reason: "resync" }).length >= 2);
    expect(w.matching("drift")).toHaveLength(2 * 3);
    expect((await w.stop()).status).toBe(0);
    // The drift is in the ledger (once) and in op status, for an auditor.
    const drift = ledgerRecords(sandbox).filter((r) => r.status === "drift");
    expect(drift.map((r) => [r.plugin, r.target]).sort()).toEqual([
      ["network", bridge],
      ["nftables", `inet/${table}`],
    ]);
    expect(status(sandbox).lastDrift?.resources).toEqual({
      network: [`link ${bridge}`],
      nftables: [`table inet/${table}`],
    });
  });
});

function linkInfoIn(netns: TestNetns, name: string): boolean {
  return spawnSync("ip", ["-n", netns.name, "link", "show", "dev", name]).status === 0;
}

describe("op watch with a container and an Open vSwitch bridge", () => {
  const sandbox = createCliSandbox();
  const containers: string[] = [];
  const hex = randomBytes(3).toString("hex");
  const linux = `opwl-${hex}`;
  const ovs = `opwo-${hex}`;
  const ct = testEntry(containers, {
    running: true,
    nics: [
      { type: "bridged", bridge: linux },
      { type: "bridged", bridge: ovs },
    ],
  });
  const first = `vi${ct.id}`;
  const second = `vi${ct.id}n1`;
  const file = join(sandbox.dir, "state.json");
  let w: Watching;

  beforeAll(() => {
    // The bridges are the test's, not the file's: with only an lxc section, the host's other
    // links (other tests make many) start no network runs, so each run here is the container's.
    sh("ip", ["link", "add", linux, "type", "bridge"]);
    sh("ip", ["link", "set", linux, "up"]);
    createOvsBridge(ovs);
    writeFileSync(file, JSON.stringify({ version: 1, plugins: { lxc: { containers: [ct] } } }));
  });
  afterAll(async () => {
    if (w !== undefined && w.child.exitCode === null) {
      w.child.kill("SIGKILL");
      await w.done;
    }
    await removeContainers(containers);
    removeBridge(ovs);
    removeBridge(linux);
    sandbox.cleanup();
  });

  it("shares the host lock: op apply during the watch's run exits 75 naming it", async () => {
    w = startWatch(sandbox, file, []);
    await w.waitFor("run-start", { reason: "start" });
    const pid = String(w.matching("start")[0]?.pid);
    const apply = sandbox.op(["apply", file]);
    expect(apply.status, apply.stderr).toBe(75);
    expect(apply.stderr).toContain(`pid ${pid}`);
    await w.waitFor("run-end", { reason: "start" });
    expect(w.matching("run-end", { reason: "start" })[0]?.ok).toBe(true);
    expect((await instance(ct.name))?.status).toBe("Running");
    expect(ovsPorts(ovs)).toEqual([second]);
    await pastEchoWindow();
  });

  it("starts the container stopped by hand, on Incus's event", async () => {
    const corrections = correctedBy(w.events, "lxc", ct.name).length;
    await incus.request("PUT", `/1.0/instances/${ct.name}/state`, { action: "stop", force: true });
    await until(
      "the watch starts the container again",
      async () =>
        correctedBy(w.events, "lxc", ct.name).length > corrections &&
        (await instance(ct.name))?.status === "Running",
    );
    expect(correctedBy(w.events, "lxc", ct.name).at(-1)).toBe("hint");
    await pastEchoWindow();
  });

  it("renames back the host veth renamed by hand", async () => {
    await until("the veth is there", () => linkInfo(first) !== undefined);
    const other = `opwx${hex}`;
    sh("ip", ["link", "set", first, "down"]);
    sh("ip", ["link", "set", first, "name", other]);
    // Renaming takes the link down first: that event, under its vi name, is the hint.
    await until("the veth has its name back", () => linkInfo(first)?.master === linux);
    expect(linkInfo(other)).toBeUndefined();
    expect(correctedBy(w.events, "lxc", ct.name).at(-1)).toBe("hint");
    await pastEchoWindow();
  });

  it("puts back the OVS port removed by hand", async () => {
    sh("ovs-vsctl", ["del-port", ovs, second]);
    await until("the port is back", () => ovsPorts(ovs).includes(second));
    expect(correctedBy(w.events, "lxc", ct.name).at(-1)).toBe("hint");
    expect(w.matching("run-start", { reason: "resync" })).toEqual([]);
    await pastEchoWindow();
  });

  it("on SIGTERM during a run, lets it finish and be recorded, then exits 0", async () => {
    // The test holds the host lock, so the watch's run waits in flight for as long as needed.
    const lockFile = sandbox.env.OP_LOCK as string;
    // Its own process group: `sleep` inherits the locked descriptor, so both must go.
    const holder = spawn("flock", [lockFile, "sleep", "120"], { stdio: "ignore", detached: true });
    try {
      await until(
        "the test holds the lock",
        () => spawnSync("flock", ["-n", lockFile, "true"]).status !== 0,
      );
      const started = w.matching("run-start").length;
      await incus.request("PUT", `/1.0/instances/${ct.name}/state`, {
        action: "stop",
        force: true,
      });
      await until(
        "the container is stopped",
        async () => (await instance(ct.name))?.status === "Stopped",
      );
      // Any run now is the lxc plugin's, and reads the host once it has the lock: it finds
      // the container stopped, whichever event started it.
      await until("a run starts", () => w.matching("run-start").length > started);
      w.child.kill("SIGTERM");
      await w.waitFor("stopping");
      expect(w.child.exitCode).toBeNull();
    } finally {
      process.kill(-(holder.pid as number), "SIGKILL");
    }
    const finished = await w.done;
    expect(finished.status, finished.stderr).toBe(0);
    const names = w.events.map((e) => e.event);
    expect(names.lastIndexOf("run-end")).toBeGreaterThan(names.indexOf("stopping"));
    expect(names.at(-1)).toBe("stopped");
    expect((await instance(ct.name))?.status).toBe("Running");
    const records = ledgerRecords(sandbox).filter((r) => r.target === ct.name);
    // Every intent has its outcome: the run was not cut short.
    const intents = records.filter((r) => r.status === "intent").length;
    expect(intents).toBeGreaterThan(0);
    expect(records.filter((r) => r.status === "ok" || r.status === "failed")).toHaveLength(intents);
  });
});
