/**
 * `op file push` and `op file pull` of a 200 MB file on the real Incus daemon, each beside
 * `incus file push/pull` of the same file into the same stopped container, sampled in turns;
 * and the peak resident memory of each (GNU time's %M: the process's VmHWM at its end).
 * The container is `opfl-bench-…`, removed at the end whatever happens.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Figure, interleavedMediansMs, isolatedEnv, runOrThrow } from "./measure.js";
import { opBinary } from "./startup.js";

const image = "op-test/busybox";
const sizeMb = 200;

/** Peak resident memory of one run of the command, in MB (GNU time reports KiB). */
function peakMb(command: string, args: string[], env: NodeJS.ProcessEnv): number {
  const result = spawnSync("/usr/bin/time", ["-f", "peak-kib=%M", command, ...args], {
    env,
    encoding: "utf8",
  });
  const match = /peak-kib=(\d+)\s*$/.exec(result.stderr ?? "");
  if (result.status !== 0 || !match)
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  return Number(match[1]) / 1024;
}

export async function benchFiles(runs = 5): Promise<Figure[]> {
  const tag = randomBytes(2).toString("hex");
  const name = `opfl-bench-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), "op-bench-files-"));
  const env = isolatedEnv(dir);
  const big = join(dir, "big");
  try {
    runOrThrow("sh", ["-c", `head -c ${sizeMb}M /dev/urandom > '${big}'`]);
    runOrThrow("incus", ["init", image, name, "-q", "-c", "user.op.managed=true"]);
    const op = (...args: string[]) => runOrThrow(opBinary, ["file", ...args], { env });
    const bare = (...args: string[]) => runOrThrow("incus", ["file", ...args, "-q"]);
    const [opPush, incusPush] = await interleavedMediansMs(runs, [
      () => op("push", big, `${name}:/root/op`),
      () => bare("push", big, `${name}/root/incus`),
    ]);
    const [opPull, incusPull] = await interleavedMediansMs(runs, [
      () => op("pull", `${name}:/root/op`, join(dir, "op.back")),
      () => bare("pull", `${name}/root/incus`, join(dir, "incus.back")),
    ]);
    const opPushPeak = peakMb(opBinary, ["file", "push", big, `${name}:/root/op`], env);
    const incusPushPeak = peakMb("incus", ["file", "push", "-q", big, `${name}/root/incus`], env);
    const opPullPeak = peakMb(
      opBinary,
      ["file", "pull", `${name}:/root/op`, join(dir, "op.back")],
      env,
    );
    const incusPullPeak = peakMb(
      "incus",
      ["file", "pull", "-q", `${name}/root/incus`, join(dir, "incus.back")],
      env,
    );
    const file = `${sizeMb} MB file, stopped container`;
    return [
      {
        name: `op file push, ${file}`,
        value: opPush ?? Number.NaN,
        unit: "ms",
        floor: incusPush ?? Number.NaN,
        floorLabel: "incus file push",
        target: { ratio: 1.2 },
      },
      {
        name: `op file pull, ${file}`,
        value: opPull ?? Number.NaN,
        unit: "ms",
        floor: incusPull ?? Number.NaN,
        floorLabel: "incus file pull",
        target: { ratio: 1.2 },
      },
      {
        name: `op file push, peak resident memory, ${file}`,
        value: opPushPeak,
        unit: "MB",
        floor: incusPushPeak,
        floorLabel: "incus file push",
        target: { absolute: 100 },
      },
      {
        name: `op file pull, peak resident memory, ${file}`,
        value: opPullPeak,
        unit: "MB",
        floor: incusPullPeak,
        floorLabel: "incus file pull",
        target: { absolute: 100 },
      },
    ];
  } finally {
    runOrThrow("incus", ["delete", "--force", name]);
    rmSync(dir, { recursive: true, force: true });
  }
}
