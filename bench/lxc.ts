/**
 * The lxc plugin on the real Incus daemon (scripts/setup-incus.sh), each figure beside the bare
 * tool doing the same work in the same run:
 * - `op plan` on 100 converged containers (each with its veth in a bridge) against one
 *   `GET /1.0/instances?recursion=1&all-projects=true` (the query's listing) plus a node start;
 * - `op apply` creating 50 containers against `xargs -P 8 incus launch` and a serial loop;
 * - `op apply` deleting them (ensure: absent) against `xargs -P 8 incus delete -f` and a loop.
 * Containers are `opbench-…` and removed at the end, whatever happens.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/host/settings.js";
import { type Figure, isolatedEnv, medianMs, runOrThrow, timeMs } from "./measure.js";
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
