/**
 * The network plugin's figures, each beside the same work done by the bare tool:
 * - `op apply` creating 200 veth pairs and 20 Linux bridges with addresses in a fresh
 *   namespace, vs one `ip -batch` file doing the same plus a node start (target ≤ 2×);
 * - `op plan` on that converged namespace, vs `ip -j -d addr show` plus a node start (≤ 1.5×);
 * - 20 OVS bridges with 10 ports each created in one run, vs one chained ovs-vsctl (≤ 1.5×).
 * Medians of 9 samples: these figures are tens of milliseconds on a noisy machine.
 * Namespaces are all made before timing starts and deleted at the end: the kernel tears a
 * namespace down in the background, and that would slow whatever is timed next. OVS is timed
 * first, before they exist: the 8,400 links of the netlink samples keep the kernel busy for
 * seconds after they are made (IPv6 link-local addresses, their DAD and MLD timers), and on
 * two CPUs that moved the OVS ratio from ~1.55x to ~1.7x, for both op and ovs-vsctl's work.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Figure, isolatedEnv, medianMs, runOrThrow, timeMs } from "./measure.js";
import { opBinary } from "./startup.js";

const bridges = 20;
const veths = 200;

/** The state file of the netlink benchmark, and the `ip -batch` text doing the same work. */
export function netlinkBench(): { state: unknown; batch: string } {
  const interfaces: unknown[] = [];
  const lines: string[] = [];
  for (let b = 0; b < bridges; b++) {
    const ports = Array.from(
      { length: veths / bridges },
      (_, i) => `v${b * (veths / bridges) + i}`,
    );
    interfaces.push({
      name: `br${b}`,
      type: "linux-bridge",
      ipv4: { addresses: [`198.18.${b}.1/24`] },
      bridge: { ports },
    });
    lines.push(
      `link add br${b} type bridge`,
      `link set br${b} up`,
      `addr add 198.18.${b}.1/24 dev br${b}`,
    );
  }
  for (let v = 0; v < veths; v++) {
    const bridge = `br${Math.floor(v / (veths / bridges))}`;
    const address = `198.19.${v}.1/30`;
    interfaces.push({
      name: `v${v}`,
      type: "veth",
      veth: { peer: `v${v}p` },
      ipv4: { addresses: [address] },
    });
    lines.push(
      `link add v${v} type veth peer name v${v}p`,
      `link set v${v} master ${bridge}`,
      `link set v${v} up`,
      `addr add ${address} dev v${v}`,
    );
  }
  return {
    state: { version: 1, plugins: { network: { interfaces } } },
    batch: `${lines.join("\n")}\n`,
  };
}

/** 20 OVS bridges of 10 internal ports each (left down, as ovs-vsctl leaves them). */
export function ovsBench(prefix: string): { state: unknown; vsctl: string[] } {
  const interfaces: unknown[] = [];
  const args: string[] = [];
  for (let b = 0; b < bridges; b++) {
    const bridge = `${prefix}b${b}`;
    const ports = Array.from({ length: 10 }, (_, p) => `${prefix}b${b}p${p}`);
    interfaces.push({
      name: bridge,
      type: "ovs-bridge",
      state: "down",
      ovs: { ports: ports.map((name) => ({ name })) },
    });
    args.push("--", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev");
    for (const port of ports) {
      interfaces.push({ name: port, type: "ovs-interface", state: "down" });
      args.push("--", "add-port", bridge, port, "--", "set", "interface", port, "type=internal");
    }
  }
  return { state: { version: 1, plugins: { network: { interfaces } } }, vsctl: args };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Whether the built CLI knows the network plugin yet (it is registered by the engine's author). */
function cliKnowsNetwork(file: string, env: NodeJS.ProcessEnv): boolean {
  try {
    runOrThrow(opBinary, ["validate", file], { env });
    return true;
  } catch {
    return false;
  }
}

export async function benchNetwork(runs = 9): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "op-bench-net-"));
  const env = isolatedEnv(dir);
  const tag = randomBytes(2).toString("hex");
  const namespaces: string[] = [];
  const fresh = (): string => {
    const name = `opb-net-${tag}-${namespaces.length}`;
    runOrThrow("ip", ["netns", "add", name]);
    namespaces.push(name);
    return name;
  };
  const inNetns = (netns: string, command: string, args: string[]) => [
    "netns",
    "exec",
    netns,
    command,
    ...args,
  ];
  try {
    const { state, batch } = netlinkBench();
    const file = join(dir, "net.json");
    writeFileSync(file, JSON.stringify(state));
    if (!cliKnowsNetwork(file, env)) {
      process.stderr.write(
        "bench network: the op CLI does not know the network plugin yet; skipped\n",
      );
      return [];
    }
    const ovs = await benchOvs(runs, dir, env, tag);
    const targets = Array.from({ length: 2 * (runs + 1) }, fresh);
    const applySamples: number[] = [];
    const floorSamples: number[] = [];
    // Interleaved, one warm-up pair first, each in a namespace of its own.
    for (let i = 0; i <= runs; i++) {
      const op = timeMs(() =>
        runOrThrow("ip", inNetns(targets[2 * i] as string, opBinary, ["apply", file]), { env }),
      );
      const floor = timeMs(() => {
        runOrThrow("ip", inNetns(targets[2 * i + 1] as string, process.execPath, ["-e", "0"]));
        runOrThrow("ip", inNetns(targets[2 * i + 1] as string, "ip", ["-batch", "-"]), {
          input: batch,
        });
      });
      if (i > 0) {
        applySamples.push(op);
        floorSamples.push(floor);
      }
    }
    const converged = targets[0] as string;
    const plan = await medianMs(runs, () => {
      const out = runOrThrow("ip", inNetns(converged, opBinary, ["plan", file]), { env });
      if (!/no changes/i.test(out)) throw new Error(`the network bench did not converge:\n${out}`);
    });
    const dump = await medianMs(runs, () => {
      runOrThrow("ip", inNetns(converged, process.execPath, ["-e", "0"]));
      runOrThrow("ip", inNetns(converged, "ip", ["-j", "-d", "addr", "show"]));
    });
    const figures: Figure[] = [
      {
        name: `op apply, ${veths} veth pairs + ${bridges} bridges with addresses, fresh netns`,
        value: median(applySamples),
        unit: "ms",
        floor: median(floorSamples),
        floorLabel: "one ip -batch file + node start",
        target: { ratio: 2 },
      },
      {
        name: "op plan, same namespace, converged",
        value: plan,
        unit: "ms",
        floor: dump,
        floorLabel: "ip -j -d addr show + node start",
        target: { ratio: 1.5 },
      },
    ];
    return [...figures, ...ovs];
  } finally {
    for (const name of namespaces) runOrThrow("ip", ["netns", "delete", name]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** OVS is host-wide: prefixed bridges, deleted (and vswitchd settled) before every sample. */
async function benchOvs(
  runs: number,
  dir: string,
  env: NodeJS.ProcessEnv,
  tag: string,
): Promise<Figure[]> {
  try {
    runOrThrow("ovs-vsctl", ["--timeout=5", "show"]);
  } catch {
    process.stderr.write(
      "bench network: Open vSwitch is not running (scripts/setup-ovs.sh); OVS figure skipped\n",
    );
    return [];
  }
  // ovs-vswitchd reconfigures every bridge it has at each change: others make both op's and the
  // floor's samples slower, and the ratio smaller than on a host without them.
  const others = runOrThrow("ovs-vsctl", ["--timeout=5", "list-br"]).split("\n").filter(Boolean);
  if (others.length > 0) {
    process.stderr.write(
      `bench network: ${others.length} other OVS bridge(s) exist (${others.slice(0, 3).join(", ")}${others.length > 3 ? ", ..." : ""}): the OVS figures are slower and their ratio smaller than on a host without them\n`,
    );
  }
  const prefix = `opbo${tag}`;
  const { state, vsctl } = ovsBench(prefix);
  const file = join(dir, "ovs.json");
  writeFileSync(file, JSON.stringify(state));
  const clear = () => {
    const args = Array.from({ length: bridges }, (_, b) => [
      "--",
      "--if-exists",
      "del-br",
      `${prefix}b${b}`,
    ]).flat();
    runOrThrow("ovs-vsctl", ["--timeout=60", ...args]);
  };
  // The same bridges made by the least a Node program can do (bench/ovs-minimal.ts): what of
  // op's ratio is Node's start and the re-read after ovs-vswitchd, not op's own work.
  const minimal = [join(import.meta.dirname, "ovs-minimal.js"), prefix, join(dir, "minimal")];
  const opSamples: number[] = [];
  const minimalSamples: number[] = [];
  const floorSamples: number[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      clear();
      const op = timeMs(() => runOrThrow(opBinary, ["apply", file], { env }));
      clear();
      const least = timeMs(() => runOrThrow(process.execPath, minimal));
      clear();
      const floor = timeMs(() => runOrThrow("ovs-vsctl", ["--timeout=60", ...vsctl]));
      if (i > 0) {
        opSamples.push(op);
        minimalSamples.push(least);
        floorSamples.push(floor);
      }
    }
  } finally {
    clear();
  }
  const floor = median(floorSamples);
  return [
    {
      name: `op apply, ${bridges} OVS bridges × 10 ports`,
      value: median(opSamples),
      unit: "ms",
      floor,
      floorLabel: "one chained ovs-vsctl",
      target: { ratio: 1.5 },
    },
    {
      name: "the same by a minimal Node program (read, commit, wait, read, 2 records)",
      value: median(minimalSamples),
      unit: "ms",
      floor,
      floorLabel: "one chained ovs-vsctl",
      target: {},
    },
  ];
}
