/**
 * Shared helpers of the benchmark: every figure is printed beside the floor it is compared
 * with (the same work done by the bare tool), as a ratio measured in the same run.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export interface Figure {
  /** What was measured, e.g. "op plan, 10 tables / 2,000 rules (converged)". */
  name: string;
  /** op's figure. */
  value: number;
  unit: "ms" | "s" | "%" | "MB";
  /** The same work done by the bare tool, in the same unit. */
  floor: number;
  floorLabel: string;
  /** The target, e.g. { ratio: 1.5 } (value ≤ 1.5 × floor), { overMs: 150 } or { absolute: 10 }. */
  target: { ratio?: number; overMs?: number; absolute?: number; atLeastTimesFaster?: number };
}

/** The median of `runs` timings of `work` (after one warm-up), in milliseconds. */
export async function medianMs(
  runs: number,
  work: () => unknown | Promise<unknown>,
): Promise<number> {
  await work();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await work();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
}

/**
 * The medians of several works sampled in turns (after one warm-up each), in milliseconds: a
 * busy moment of a shared host then weighs on all of them, not on whichever ran at that time.
 */
export async function interleavedMediansMs(
  runs: number,
  works: readonly (() => unknown | Promise<unknown>)[],
): Promise<number[]> {
  for (const work of works) await work();
  const samples = works.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (const [w, work] of works.entries()) {
      const start = process.hrtime.bigint();
      await work();
      samples[w]?.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return samples.map((list) => {
    list.sort((a, b) => a - b);
    return list[Math.floor(list.length / 2)] ?? Number.NaN;
  });
}

/** How long `work` takes, once, in milliseconds. */
export function timeMs(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** An environment in which `op` keeps its ledger, key, lock and cache under `dir`. */
export function isolatedEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    OP_LEDGER: join(dir, "ledger"),
    OP_LEDGER_KEY: join(dir, "ledger.key"),
    OP_LOCK: join(dir, "op.lock"),
    OP_CACHE_DIR: join(dir, "cache"),
    OP_STATUS: join(dir, "status.json"),
  };
}

/** Runs a command to completion and fails loudly if it fails (a benchmark of a failure is void). */
export function runOrThrow(
  command: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const result = spawnSync(command, args, {
    input: options.input,
    env: options.env ?? process.env,
    encoding: "utf8",
    maxBuffer: 1 << 30,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  }
  return result.stdout;
}

export function ratioOf(figure: Figure): number {
  return figure.value / figure.floor;
}

/** Whether a figure meets its target (printed, never asserted: these machines are noisy). */
export function meetsTarget(figure: Figure): boolean {
  const { target } = figure;
  if (target.ratio !== undefined && ratioOf(figure) > target.ratio) return false;
  if (target.overMs !== undefined && figure.value - figure.floor > target.overMs) return false;
  if (target.absolute !== undefined && figure.value > target.absolute) return false;
  if (
    target.atLeastTimesFaster !== undefined &&
    figure.floor / figure.value < target.atLeastTimesFaster
  )
    return false;
  return true;
}
