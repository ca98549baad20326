/**
 * The lxc plugin on the real Incus daemon (scripts/setup-incus.sh), each figure beside the bare
 * tool doing the same work in the same run:
 * - `op plan` on 100 converged containers (each with its veth in a bridge) against one
 *   `GET /1.0/instances?recursion=1&all-projects=true` (the query's listing) plus a node start;
 * - `op apply` creating 50 containers against `xargs -P 8 incus launch` and a serial loop;
 * - `op apply` deleting them (ensure: absent) against `xargs -P 8 incus delete -f` and a loop;
 * - (benchLxcInventory) `op plan` on 20 profiles, 5 networks, 20 volumes and 100 containers
 *   against a node process doing the bulk GETs of every kind.
 * Containers are `opbench-…` and removed at the end, whatever happens.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/host/settings.js";
import {
  type Figure,
  interleavedMediansMs,
  isolatedEnv,
  medianMs,
  runOrThrow,
  timeMs,
} from "./measure.js";
import { opBinary } from "./startup.js";

const image = "op-test/busybox";
const socket = loadSettings(process.env).incus.socket;

const seconds = (work: () => void): number => timeMs(work) / 1000;

export async function benchLxc(runs = 7): Promise<Figure[]> {
  const tag = randomBytes(2).toString("hex");
  const dir = mkdtempSync(join(tmpdir(), "op-bench-lxc-"));
  const env = isolatedEnv(dir);
  const bridge = `opbb-${tag}`;
  const names = (group: string, count: number) =>
    Array.from({ length: count }, (_, i) => `opbench-${tag}-${group}${i}`);
  const all: string[] = [];
  const op = (file: string, args: string[] = ["apply", file]) =>
    runOrThrow(opBinary, args, { env });
  const writeState = (name: string, containers: unknown[]) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ version: 1, plugins: { lxc: { containers } } }));
    return file;
  };
  const launchAll = (list: string[], parallel: boolean) =>
    parallel
      ? runOrThrow("xargs", ["-P", "8", "-I{}", "incus", "launch", image, "{}", "-q"], {
          input: list.join("\n"),
        })
      : runOrThrow("bash", [
          "-c",
          `for n in ${list.join(" ")}; do incus launch ${image} $n -q; done`,
        ]);
  const deleteAll = (list: string[], parallel: boolean) =>
    parallel
      ? runOrThrow("xargs", ["-P", "8", "-I{}", "incus", "delete", "-f", "{}"], {
          input: list.join("\n"),
        })
      : runOrThrow("bash", ["-c", `for n in ${list.join(" ")}; do incus delete -f $n; done`]);

  runOrThrow("ip", ["link", "add", bridge, "type", "bridge"]);
  runOrThrow("ip", ["link", "set", bridge, "up"]);
  try {
    // 1. op plan on 100 converged containers, each with its veth in a bridge.
    const converged = names("p", 100);
    all.push(...converged);
    const hundred = converged.map((name, i) => ({
      id: 700000 + i,
      name,
      image,
      bridge,
      stop_timeout: 5,
    }));
    const planFile = writeState("hundred.json", hundred);
    op(planFile);
    const plan = await medianMs(runs, () => {
      const out = op(planFile, ["plan", planFile]);
      if (!out.includes("No changes")) throw new Error(`bench state did not converge:\n${out}`);
    });
    const nodeStart = await medianMs(runs, () => runOrThrow(process.execPath, ["-e", "0"]));
    const list = await medianMs(runs, () =>
      runOrThrow("curl", [
        "-sf",
        "--unix-socket",
        socket,
        "http://incus/1.0/instances?recursion=1&all-projects=true",
        "-o",
        "/dev/null",
      ]),
    );
    op(
      writeState(
        "hundred-gone.json",
        hundred.map((c) => ({ ...c, ensure: "absent" })),
      ),
    );

    // 2. Creating 50 from nothing, then deleting them: op, xargs -P 8, a serial loop.
    const [viaOp, viaXargs, viaLoop] = ["o", "x", "s"].map((group) => names(group, 50));
    all.push(...(viaOp as string[]), ...(viaXargs as string[]), ...(viaLoop as string[]));
    const fifty = (viaOp as string[]).map((name, i) => ({
      id: 710000 + i,
      name,
      image,
      stop_timeout: 5,
    }));
    const createFile = writeState("fifty.json", fifty);
    const deleteFile = writeState(
      "fifty-gone.json",
      fifty.map((c) => ({ ...c, ensure: "absent" })),
    );

    const xargsCreate = seconds(() => launchAll(viaXargs as string[], true));
    const opCreate = seconds(() => op(createFile));
    const loopCreate = seconds(() => launchAll(viaLoop as string[], false));
    const xargsDelete = seconds(() => deleteAll(viaXargs as string[], true));
    const opDelete = seconds(() => op(deleteFile));
    const loopDelete = seconds(() => deleteAll(viaLoop as string[], false));

    const xargsLabel = (verb: string) => `xargs -P 8 incus ${verb}`;
    const loopLabel = (verb: string) => `serial incus ${verb} loop`;
    return [
      {
        name: "op plan, 100 containers, converged",
        value: plan,
        unit: "ms",
        floor: nodeStart + list,
        floorLabel: "GET /1.0/instances?recursion=1&all-projects=true + node start",
        target: { ratio: 2 },
      },
      {
        name: "op apply, create 50 containers",
        value: opCreate,
        unit: "s",
        floor: xargsCreate,
        floorLabel: xargsLabel("launch"),
        target: { ratio: 1.25 },
      },
      {
        name: "op apply, create 50 containers",
        value: opCreate,
        unit: "s",
        floor: loopCreate,
        floorLabel: loopLabel("launch"),
        target: { atLeastTimesFaster: 3 },
      },
      {
        name: "op apply, delete 50 containers",
        value: opDelete,
        unit: "s",
        floor: xargsDelete,
        floorLabel: xargsLabel("delete -f"),
        target: { ratio: 1.25 },
      },
      {
        name: "op apply, delete 50 containers",
        value: opDelete,
        unit: "s",
        floor: loopDelete,
        floorLabel: loopLabel("delete -f"),
        target: { atLeastTimesFaster: 3 },
      },
    ];
  } finally {
    const left = new Set(
      runOrThrow("incus", ["list", "--format", "csv", "--columns", "n"])
        .split("\n")
        .filter((name) => all.includes(name)),
    );
    if (left.size > 0) {
      runOrThrow("bash", [
        "-c",
        `for n in ${[...left].join(" ")}; do incus config set $n security.protection.delete=false; done`,
      ]);
      deleteAll([...left], true);
    }
    runOrThrow("ip", ["link", "del", bridge]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bulk GETs of a plan of every Incus kind, as the floor's node process issues them. */
const inventoryGets = [
  "/1.0/instances?recursion=1&all-projects=true",
  "/1.0/images?recursion=1",
  "/1.0/profiles?recursion=1&all-projects=true",
  "/1.0/networks?recursion=1&all-projects=true",
  "/1.0/projects?recursion=1",
];
/** Those a plan of containers and images alone makes (query.ts). */
const containerGets = inventoryGets.slice(0, 2);

/**
 * A node process that issues `paths` at once over the unix socket, then (when asked) every
 * pool's volumes, as op's query would: a node start plus the bulk reads, nothing else.
 */
function floorScript(paths: readonly string[], volumes: boolean): string {
  return `
const http = require("node:http");
const agent = new http.Agent({ keepAlive: true });
const get = (path) => new Promise((resolve, reject) => {
  http.get({ socketPath: ${JSON.stringify(socket)}, path, agent }, (res) => {
    const chunks = [];
    res.on("data", (chunk) => chunks.push(chunk));
    res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString()).metadata));
  }).on("error", reject);
});
(async () => {
  const pools = ${volumes} ? get("/1.0/storage-pools?recursion=1") : Promise.resolve([]);
  const [listed] = await Promise.all([pools, ...${JSON.stringify(paths)}.map(get)]);
  await Promise.all(listed.map((pool) =>
    get("/1.0/storage-pools/" + encodeURIComponent(pool.name) + "/volumes/custom?recursion=1&all-projects=true")));
  agent.destroy();
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

/**
 * A fixture request, tried up to five times: Incus's bridge code lists a bridge's links when
 * it makes or deletes a network and fails when one of them vanishes meanwhile, which the other
 * users of a shared host (containers starting and stopping) make happen.
 */
async function retried<T>(attempt: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (i >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * `op plan` on a converged host of 20 profiles, 5 managed networks, 20 custom volumes and 100
 * stopped containers (each with one of the profiles), against a node process doing the bulk
 * GETs of every kind. Profiles, networks and volumes are made through the API with op's tag
 * (so that a file naming them is converged once those kinds exist); the containers by `op
 * apply`, which is timed. Everything made is removed at the end, whatever happens.
 */
export async function benchLxcInventory(runs = 9): Promise<Figure[]> {
  const { createIncusClient } = await import("../src/incus.js");
  const incus = createIncusClient(socket);
  const tag = randomBytes(2).toString("hex");
  const dir = mkdtempSync(join(tmpdir(), "op-bench-inventory-"));
  const env = isolatedEnv(dir);
  const managed = { "user.op.managed": "true" };
  const profiles = Array.from({ length: 20 }, (_, i) => ({
    name: `optbp-${tag}-${i}`,
    config: { "limits.memory": `${128 + i}MiB` },
    devices: {},
  }));
  // Five distinct /24s in 198.18.200-250, picked at random to avoid other users of the range.
  const octets = new Set<number>();
  while (octets.size < 5) octets.add(200 + Math.floor(Math.random() * 51));
  const networks = [...octets].map((octet, i) => ({
    name: `optbn${tag}${i}`,
    type: "bridge",
    config: {
      "ipv4.address": `198.18.${octet}.1/24`,
      "ipv4.nat": "false",
      "ipv4.dhcp": "false",
      "ipv6.address": "none",
    },
  }));
  const volumes = Array.from({ length: 20 }, (_, i) => ({
    pool: "default",
    name: `optbv-${tag}-${i}`,
  }));
  const containers = Array.from({ length: 100 }, (_, i) => ({
    id: 720000 + i,
    name: `opbench-${tag}-i${i}`,
    image,
    running: false,
    profiles: ["default", profiles[i % profiles.length]?.name as string],
    stop_timeout: 5,
  }));
  const section = (list: unknown[]) => ({ profiles, networks, volumes, containers: list });
  const write = (name: string, lxc: object) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ version: 1, plugins: { lxc } }));
    return file;
  };
  const op = (args: string[]) => runOrThrow(opBinary, args, { env });
  const made = { profiles: [] as string[], networks: [] as string[], volumes: [] as string[] };
  let containersMade = false;
  try {
    const started = process.hrtime.bigint();
    const make = async (list: string[], path: string, name: string, body: object) => {
      await retried(() => incus.request("POST", path, body));
      list.push(name);
    };
    await Promise.all([
      ...profiles.map((profile) =>
        make(made.profiles, "/1.0/profiles", profile.name, {
          ...profile,
          config: { ...profile.config, ...managed },
        }),
      ),
      ...networks.map((network) =>
        make(made.networks, "/1.0/networks", network.name, {
          ...network,
          config: { ...network.config, ...managed },
        }),
      ),
      ...volumes.map((volume) =>
        make(made.volumes, `/1.0/storage-pools/${volume.pool}/volumes`, volume.name, {
          name: volume.name,
          type: "custom",
          config: managed,
        }),
      ),
    ]);
    const objectsS = Number(process.hrtime.bigint() - started) / 1e9;
    const planFile = write("inventory.json", section(containers));
    containersMade = true;
    const createS = seconds(() => op(["apply", planFile]));
    const [plan, floor, floorToday] = (await interleavedMediansMs(runs, [
      () => {
        const out = op(["plan", planFile]);
        if (!out.includes("No changes")) throw new Error(`bench state did not converge:\n${out}`);
      },
      () => runOrThrow(process.execPath, ["-e", floorScript(inventoryGets, true)]),
      () => runOrThrow(process.execPath, ["-e", floorScript(containerGets, false)]),
    ])) as [number, number, number];
    const deleteS = seconds(() =>
      op([
        "apply",
        write("inventory-gone.json", section(containers.map((c) => ({ ...c, ensure: "absent" })))),
      ]),
    );
    containersMade = false;
    // How long the fixture took, for docs/benchmarks.md (not a figure: it has no floor).
    process.stderr.write(
      `lxc-inventory fixture: profiles, networks and volumes ${objectsS.toFixed(1)} s (API, all at once); op apply creating 100 stopped containers ${createS.toFixed(1)} s, deleting them ${deleteS.toFixed(1)} s\n`,
    );
    const what = "20 profiles, 5 networks, 20 volumes, 100 containers";
    return [
      {
        name: `op plan, ${what}, converged`,
        value: plan,
        unit: "ms",
        floor,
        floorLabel: `node start + ${inventoryGets.length} bulk GETs + volumes of each pool`,
        target: { ratio: 2 },
      },
      {
        name: "the same plan",
        value: plan,
        unit: "ms",
        floor: floorToday,
        floorLabel: "node start + the instances and images GETs only",
        target: {},
      },
    ];
  } finally {
    if (containersMade) {
      const left = runOrThrow("incus", ["list", "--format", "csv", "--columns", "n"])
        .split("\n")
        .filter((name) => name.startsWith(`opbench-${tag}-i`));
      if (left.length > 0)
        runOrThrow("xargs", ["-P", "8", "-I{}", "incus", "delete", "-f", "{}"], {
          input: left.join("\n"),
        });
    }
    // A client of its own: the first one's idle connections may have been closed by Incus
    // during the long runs. One by one, each tried again if it fails (see retried).
    incus.close();
    const cleaner = createIncusClient(socket);
    const remove = async (paths: string[]) => {
      for (const path of paths) {
        await retried(() => cleaner.request("DELETE", path)).catch((error: unknown) =>
          process.stderr.write(`clean-up: ${String(error)}\n`),
        );
      }
    };
    await remove(made.profiles.map((name) => `/1.0/profiles/${name}`));
    await remove(made.networks.map((name) => `/1.0/networks/${name}`));
    await remove(made.volumes.map((name) => `/1.0/storage-pools/default/volumes/custom/${name}`));
    cleaner.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
