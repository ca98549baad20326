/**
 * `op exec` on the real Incus daemon, beside `incus exec` doing the same in the same run
 * (sampled in turns, so a busy moment of a shared host weighs on both):
 * - the round trip of `-- true` (op: read the instance, POST exec, four websockets, the wait);
 * - 10 MB of stdout through each, to /dev/null (information: the streaming path).
 * The container is `opbench-…-exec` (op-managed, so op needs no --any), removed at the end.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Figure, interleavedMediansMs, isolatedEnv, runOrThrow } from "./measure.js";
import { opBinary } from "./startup.js";

const image = "op-test/busybox";

export async function benchExec(runs = 21): Promise<Figure[]> {
  const name = `opbench-${randomBytes(2).toString("hex")}-exec`;
  const dir = mkdtempSync(join(tmpdir(), "op-bench-exec-"));
  const env = isolatedEnv(dir);
  runOrThrow("incus", ["launch", image, name, "-q", "-c", "user.op.managed=true"]);
  try {
    const both = (command: string[]) => [
      () => runOrThrow(opBinary, ["exec", name, "--", ...command], { env }),
      () => runOrThrow("incus", ["exec", name, "--", ...command]),
    ];
    const [opTrue, incusTrue] = await interleavedMediansMs(runs, both(["true"]));
    const tenMb = ["sh", "-c", "head -c 10485760 /dev/zero"];
    const [opTen, incusTen] = await interleavedMediansMs(Math.ceil(runs / 3), both(tenMb));
    return [
      {
        name: "op exec NAME -- true, round trip",
        value: opTrue as number,
        unit: "ms",
        floor: incusTrue as number,
        floorLabel: "incus exec NAME -- true",
        target: { ratio: 1 },
      },
      {
        name: "op exec, 10 MB of stdout",
        value: opTen as number,
        unit: "ms",
        floor: incusTen as number,
        floorLabel: "incus exec, the same command",
        target: {},
      },
    ];
  } finally {
    runOrThrow("incus", ["delete", "-f", name]);
    rmSync(dir, { recursive: true, force: true });
  }
}
