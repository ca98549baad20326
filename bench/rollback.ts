/**
 * Undoing a run (issue 18), on the network benchmark's work (200 veth pairs and 20 bridges
 * with addresses, netlinkBench), each sample in a fresh namespace made before timing starts:
 * - `op apply --confirm 600s` (arming the deadline: marker and detached watcher) vs the same
 *   apply without it (target ≤ 1.3×); each armed run is confirmed after it, untimed;
 * - `op rollback RUN` of such an apply (deleting all it made) vs the apply itself (≤ 2×).
 * Every apply takes its pre-image and post-image whether or not --confirm is given: they are
 * in both sides of the first figure, and the floor of the second.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Figure, isolatedEnv, runOrThrow, timeMs } from "./measure.js";
import { netlinkBench } from "./network.js";
import { opBinary } from "./startup.js";

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export async function benchRollback(runs = 5): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "op-bench-rb-"));
  const env = isolatedEnv(dir);
  const tag = randomBytes(2).toString("hex");
  const namespaces: string[] = [];
  const fresh = (): string => {
    const name = `opb-rb-${tag}-${namespaces.length}`;
    runOrThrow("ip", ["netns", "add", name]);
    namespaces.push(name);
    return name;
  };
  const op = (netns: string, args: string[]) =>
    runOrThrow("ip", ["netns", "exec", netns, opBinary, ...args], { env });
  try {
    const file = join(dir, "net.json");
    writeFileSync(file, JSON.stringify(netlinkBench().state));
    const targets = Array.from({ length: 2 * (runs + 1) }, fresh);
    const plain: number[] = [];
    const confirmed: number[] = [];
    const undo: number[] = [];
    // Interleaved, one warm-up round first.
    for (let i = 0; i <= runs; i++) {
      const [a, b] = [targets[2 * i] as string, targets[2 * i + 1] as string];
      let run = "";
      const plainApply = () =>
        timeMs(() => {
          run = (JSON.parse(op(a, ["apply", file, "--json"])) as { run: string }).run;
        });
      const armedApply = () => timeMs(() => op(b, ["apply", file, "--confirm", "600s"]));
      // Turn about: the 440 links an apply makes keep the kernel busy for a while after it
      // (IPv6 addresses, their timers), which would weigh on whichever always ran second.
      const [applied, armed] =
        i % 2 === 0
          ? [plainApply(), armedApply()]
          : (() => {
              const first = armedApply();
              return [plainApply(), first];
            })();
      op(b, ["confirm"]);
      const rolledBack = timeMs(() => op(a, ["rollback", run]));
      if (i > 0) {
        plain.push(applied);
        confirmed.push(armed);
        undo.push(rolledBack);
      }
    }
    return [
      {
        name: "op apply --confirm 600s, the network bench's 200 veths + 20 bridges",
        value: median(confirmed),
        unit: "ms",
        floor: median(plain),
        floorLabel: "the same op apply without --confirm",
        target: { ratio: 1.3 },
      },
      {
        name: "op rollback of that apply (every link it made deleted)",
        value: median(undo),
        unit: "ms",
        floor: median(plain),
        floorLabel: "the apply itself",
        target: { ratio: 2 },
      },
    ];
  } finally {
    for (const name of namespaces) runOrThrow("ip", ["netns", "delete", name]);
    rmSync(dir, { recursive: true, force: true });
  }
}
