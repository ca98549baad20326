/** Cold start: `op --version` against a bare `node -e 0` on the same Node binary. */
import { join } from "node:path";
import { type Figure, medianMs, runOrThrow } from "./measure.js";

export const repoRoot = join(import.meta.dirname, "..", "..");
export const opBinary = join(repoRoot, "scripts", "op");

export async function benchStartup(runs = 20): Promise<Figure[]> {
  const op = await medianMs(runs, () => runOrThrow(opBinary, ["--version"]));
  const floor = await medianMs(runs, () => runOrThrow(process.execPath, ["-e", "0"]));
  return [
    {
      name: "cold start: op --version",
      value: op,
      unit: "ms",
      floor,
      floorLabel: "node -e 0",
      target: { overMs: 150 },
    },
  ];
}
