/**
 * `op watch` on the real daemons: how long a hand-made drift lasts before the watch has put it
 * back, for five kinds of drift (nft table deleted, address removed, container stopped, host
 * veth renamed, OVS port removed), 20 trials each, p50 and p95; beside it the floor a user has
 * without a watch, a cron line every minute: the drift waits for the next minute (uniformly,
 * so 30 s at the median, 57 s at p95) and then for one `op apply`, measured here. Then the
 * watch's idle cost over 60 s from /proc (CPU of its whole process tree, resident memory)
 * beside the bare monitors it stands for (`ip monitor`, `nft monitor`) over the same minute.
 * Everything it makes is `opwb…` and removed at the end, whatever happens.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/host/settings.js";
import { type Figure, isolatedEnv, medianMs, runOrThrow } from "./measure.js";
import { opBinary, repoRoot } from "./startup.js";

const trials = 20;
const nodeBinary = join(repoRoot, "node_modules", "node", "bin", "node");
/** A pause between trials longer than the watch's own-change window and debounce. */
const settleMs = 2500;
const incusSocket = loadSettings(process.env).incus.socket;

interface DriftKind {
  name: string;
  /** Makes the drift by hand, as an administrator (or another tool) would. */
  make(): void;
  /** Whether the host matches the file again for this resource. */
  corrected(): Promise<boolean>;
}

export async function benchWatch(): Promise<Figure[]> {
  const tag = randomBytes(2).toString("hex");
  const dir = mkdtempSync(join(tmpdir(), "op-bench-watch-"));
  const env = isolatedEnv(dir);
  const bridge = `opwb${tag}`;
  const ovsBridge = `opwbo${tag}`;
  const ovsPort = `opwbp${tag}`;
  const table = `opwb_${tag}`;
  const id = 790000 + Number.parseInt(tag, 16);
  const container = `opwb-${tag}`;
  const veth = `vi${id}`;
  const address = "198.18.201.1/24";
  const file = join(dir, "state.json");
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      plugins: {
        network: {
          interfaces: [
            { name: bridge, type: "linux-bridge", ipv4: { addresses: [address] } },
            { name: ovsBridge, type: "ovs-bridge", ovs: { ports: [{ name: ovsPort }] } },
            { name: ovsPort, type: "ovs-interface" },
          ],
        },
        lxc: {
          containers: [
            {
              id,
              name: container,
              image: "op-test/busybox",
              bridge,
              running: true,
              stop_timeout: 5,
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
                  priority: 10,
                  policy: "accept",
                  rules: [],
                },
              ],
            },
          ],
        },
      },
    }),
  );
  const kinds: DriftKind[] = [
    {
      name: "nft table deleted",
      make: () => runOrThrow("nft", ["delete", "table", "inet", table]),
      corrected: async () => spawnSync("nft", ["list", "table", "inet", table]).status === 0,
    },
    {
      name: "address removed",
      make: () => runOrThrow("ip", ["addr", "del", address, "dev", bridge]),
      corrected: async () =>
        runOrThrow("ip", ["-o", "addr", "show", "dev", bridge]).includes(address),
    },
    {
      name: "container stopped",
      make: () => runOrThrow("incus", ["stop", "--force", container]),
      corrected: async () => (await instanceStatus(container)) === "Running",
    },
    {
      name: "veth renamed",
      make: () => {
        runOrThrow("ip", ["link", "set", veth, "down"]);
        runOrThrow("ip", ["link", "set", veth, "name", `opwbx${tag}`]);
      },
      corrected: async () => readLink(`/sys/class/net/${veth}/master`).endsWith(`/${bridge}`),
    },
    {
      name: "OVS port removed",
      make: () => runOrThrow("ovs-vsctl", ["--timeout=10", "del-port", ovsBridge, ovsPort]),
      corrected: async () =>
        spawnSync("ovs-vsctl", ["--timeout=10", "port-to-br", ovsPort], {
          encoding: "utf8",
        }).stdout.trim() === ovsBridge,
    },
  ];

  let watch: ChildProcess | undefined;
  try {
    runOrThrow(opBinary, ["apply", file], { env });
    // What a cron line adds to its wait: one `op apply` correcting the drift, per kind.
    const applyMs = new Map<string, number>();
    for (const kind of kinds) {
      applyMs.set(
        kind.name,
        await medianMs(3, async () => {
          kind.make();
          runOrThrow(opBinary, ["apply", file], { env });
        }),
      );
    }

    watch = spawn(
      opBinary,
      // Each trial corrects the same resource: the bench raises the flapping limit so that its
      // own twenty drifts are not taken for a fight.
      ["watch", file, "--flapping", `${trials * 2}/10`, "--log-format", "json"],
      { env, stdio: ["ignore", "ignore", "pipe"] },
    );
    let log = "";
    watch.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
    });
    await waitFor("the watch's first run", 60_000, async () => log.includes('"event":"run-end"'));
    await sleep(settleMs);

    const figures: Figure[] = [];
    for (const kind of kinds) {
      const latencies: number[] = [];
      for (let trial = 0; trial < trials; trial++) {
        // The clock starts once the drift is there (stopping a container takes a while itself).
        kind.make();
        const start = process.hrtime.bigint();
        await waitFor(
          `${kind.name} corrected (trial ${trial + 1})`,
          30_000,
          kind.corrected,
          () => log,
        );
        latencies.push(Number(process.hrtime.bigint() - start) / 1e9);
        await sleep(settleMs);
      }
      latencies.sort((a, b) => a - b);
      const apply = (applyMs.get(kind.name) ?? 0) / 1000;
      figures.push(
        {
          name: `op watch: ${kind.name}, drift to corrected, p50 of ${trials}`,
          value: percentile(latencies, 0.5),
          unit: "s",
          floor: 30 + apply,
          floorLabel: "cron every minute: 30 s wait + op apply",
          target: { absolute: 1.5 },
        },
        {
          name: `op watch: ${kind.name}, p95`,
          value: percentile(latencies, 0.95),
          unit: "s",
          floor: 57 + apply,
          floorLabel: "cron every minute: 57 s wait + op apply",
          target: { absolute: 3 },
        },
      );
    }

    // Idle: the watch and the bare monitors over the same minute, nothing changing.
    const monitors = [
      spawn("ip", ["-o", "monitor", "link", "address", "route"], { stdio: "ignore" }),
      spawn("nft", ["monitor"], { stdio: "ignore" }),
    ];
    // What any Node program costs before its own code: the runtime op ships, idle.
    const idleNode = spawn(nodeBinary, ["-e", "setInterval(() => {}, 60000)"], { stdio: "ignore" });
    try {
      await sleep(settleMs);
      const watchPid = watch.pid as number;
      const monitorPids = monitors.map((child) => child.pid as number);
      const before = [cpuTicks(treeOf(watchPid)), cpuTicks(monitorPids)];
      await sleep(60_000);
      const after = [cpuTicks(treeOf(watchPid)), cpuTicks(monitorPids)];
      const percent = (i: number) =>
        (((after[i] ?? 0) - (before[i] ?? 0)) / clockTicks() / 60) * 100;
      figures.push(
        {
          name: "op watch idle 60 s: CPU of its process tree",
          value: percent(0),
          unit: "%",
          floor: percent(1),
          floorLabel: "bare ip monitor + nft monitor",
          target: { absolute: 1 },
        },
        {
          name: "op watch idle: resident memory of its process tree",
          value: rssMb(treeOf(watchPid)),
          unit: "MB",
          floor: rssMb(monitorPids),
          floorLabel: "bare ip monitor + nft monitor",
          target: { absolute: 80 },
        },
        {
          name: "op watch idle: resident memory of op's own process",
          value: rssMb([watchPid]),
          unit: "MB",
          floor: rssMb([idleNode.pid as number]),
          floorLabel: "the same Node runtime running an empty timer",
          target: {},
        },
      );
    } finally {
      for (const child of [...monitors, idleNode]) child.kill();
    }
    return figures;
  } finally {
    watch?.kill("SIGTERM");
    if (watch) await new Promise((done) => watch?.once("exit", done));
    spawnSync("incus", ["delete", "--force", container]);
    spawnSync("ip", ["link", "del", `opwbx${tag}`]);
    spawnSync("ip", ["link", "del", bridge]);
    spawnSync("ovs-vsctl", ["--timeout=10", "--if-exists", "del-br", ovsBridge]);
    spawnSync("nft", ["delete", "table", "inet", table]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function waitFor(
  what: string,
  limitMs: number,
  done: () => Promise<boolean>,
  log?: () => string,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await done())) {
    if (Date.now() > deadline)
      throw new Error(
        `bench: ${what} did not happen within ${limitMs} ms${log ? `\n${log()}` : ""}`,
      );
    await sleep(20);
  }
}

function readLink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

/** The instance's status from Incus's REST API (no `incus` client start per poll). */
function instanceStatus(name: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      { socketPath: incusSocket, path: `/1.0/instances/${name}/state`, method: "GET" },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on("end", () => {
          try {
            resolve(JSON.parse(body).metadata?.status ?? "");
          } catch {
            resolve("");
          }
        });
      },
    );
    req.on("error", () => resolve(""));
    req.end();
  });
}

/** A process and all its descendants, from /proc. */
function treeOf(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statFields(Number(entry));
    if (stat === undefined) continue;
    const parent = Number(stat[1]);
    parents.set(parent, [...(parents.get(parent) ?? []), Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i] as number) ?? []));
  return tree;
}

/** Fields of /proc/PID/stat after the command name (state is [0], ppid [1], utime [11]). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function cpuTicks(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = statFields(pid);
    return fields ? sum + Number(fields[11]) + Number(fields[12]) : sum;
  }, 0);
}

function clockTicks(): number {
  return Number(runOrThrow("getconf", ["CLK_TCK"]).trim());
}

function rssMb(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return sum + (match ? Number(match[1]) / 1024 : 0);
    } catch {
      return sum;
    }
  }, 0);
}
