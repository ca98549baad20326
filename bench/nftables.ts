/**
 * `op plan` on a converged state of 10 owned tables with 2,000 rules in all, against the floor
 * of the same read done by the bare tool: `nft -j list ruleset` plus a node start.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Figure, isolatedEnv, medianMs, runOrThrow, timeMs } from "./measure.js";
import { opBinary } from "./startup.js";

export function benchState(tables: number, rulesPerTable: number): unknown {
  return {
    version: 1,
    plugins: {
      nftables: {
        tables: Array.from({ length: tables }, (_, t) => ({
          family: "inet",
          name: `bench${t}`,
          sets: [
            {
              name: "allow",
              type: "ipv4_addr",
              flags: ["interval"],
              elements: ["198.18.0.0/16", "198.19.1.1"],
            },
          ],
          chains: [
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: t,
              policy: "accept",
              rules: Array.from(
                { length: rulesPerTable },
                (_, r) =>
                  `ip saddr 198.18.${r % 256}.0/24 tcp dport {${1000 + r},${2000 + r}} counter accept comment "r${r}"`,
              ),
            },
          ],
        })),
      },
    },
  };
}

export async function benchNftables(runs = 7): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "op-bench-nft-"));
  const netns = `opb-nft-${randomBytes(3).toString("hex")}`;
  const env = isolatedEnv(dir);
  const inNetns = (command: string, args: string[]) => ["netns", "exec", netns, command, ...args];
  runOrThrow("ip", ["netns", "add", netns]);
  try {
    const file = join(dir, "state.json");
    writeFileSync(file, JSON.stringify(benchState(10, 200)));
    runOrThrow("ip", inNetns(opBinary, ["apply", file]), { env });

    // Cold: the normalised rule forms are not cached yet (first plan on a new host or file).
    rmSync(join(dir, "cache"), { recursive: true, force: true });
    const cold = timeMs(() => runOrThrow("ip", inNetns(opBinary, ["plan", file]), { env }));

    const plan = await medianMs(runs, () => {
      const out = runOrThrow("ip", inNetns(opBinary, ["plan", file]), { env });
      if (!out.includes("No changes")) throw new Error(`bench state did not converge:\n${out}`);
    });
    const nodeStart = await medianMs(runs, () =>
      runOrThrow("ip", inNetns(process.execPath, ["-e", "0"])),
    );
    const list = await medianMs(runs, () =>
      runOrThrow("ip", inNetns("nft", ["-j", "list", "ruleset"])),
    );
    const floor = nodeStart + list;
    return [
      {
        name: "op plan, 10 tables / 2,000 rules, converged",
        value: plan,
        unit: "ms",
        floor,
        floorLabel: "nft -j list ruleset + node start",
        target: { ratio: 1.5 },
      },
      {
        name: "op plan, same, first run (no normalisation cache)",
        value: cold,
        unit: "ms",
        floor,
        floorLabel: "nft -j list ruleset + node start",
        target: {},
      },
    ];
  } finally {
    runOrThrow("ip", ["netns", "delete", netns]);
    rmSync(dir, { recursive: true, force: true });
  }
}
