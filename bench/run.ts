/**
 * `npm run bench`: every figure beside its floor (the same work done by the bare tool) and the
 * ratio, all measured in this run. Targets are printed, never asserted: machines are noisy.
 * `npm run bench -- startup ledger` runs only those groups.
 */
import { type Figure, meetsTarget, ratioOf } from "./measure.js";

const groups: Record<string, () => Promise<Figure[]>> = {
  startup: async () => (await import("./startup.js")).benchStartup(),
  nftables: async () => (await import("./nftables.js")).benchNftables(),
  network: async () => (await import("./network.js")).benchNetwork(),
  lxc: async () => (await import("./lxc.js")).benchLxc(),
  "lxc-inventory": async () => (await import("./lxc.js")).benchLxcInventory(),
  "lxc-files": async () => (await import("./lxc-files.js")).benchLxcFiles(),
  ledger: async () => (await import("./ledger.js")).benchLedger(),
  watch: async () => (await import("./watch.js")).benchWatch(),
  exec: async () => (await import("./exec.js")).benchExec(),
  rollback: async () => (await import("./rollback.js")).benchRollback(),
  files: async () => (await import("./files.js")).benchFiles(),
};

function describeTarget(figure: Figure): string {
  const { ratio, overMs, absolute, atLeastTimesFaster } = figure.target;
  const parts = [
    ratio === undefined ? undefined : `≤ ${ratio}× floor`,
    overMs === undefined ? undefined : `≤ floor + ${overMs} ms`,
    absolute === undefined ? undefined : `≤ ${absolute} ${figure.unit}`,
    atLeastTimesFaster === undefined ? undefined : `≥ ${atLeastTimesFaster}× faster than floor`,
  ].filter(Boolean);
  return parts.length === 0 ? "(for information)" : parts.join(", ");
}

function format(value: number, unit: string): string {
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${unit}`;
}

const selected = process.argv.slice(2).filter((name) => !name.startsWith("-"));
const names = selected.length > 0 ? selected : Object.keys(groups);
const rows: string[][] = [["figure", "op", "floor", "ratio", "target", ""]];
for (const name of names) {
  const group = groups[name];
  if (!group)
    throw new Error(`unknown benchmark group ${name}; known: ${Object.keys(groups).join(", ")}`);
  process.stderr.write(`running ${name}...\n`);
  for (const figure of await group()) {
    rows.push([
      figure.name,
      format(figure.value, figure.unit),
      `${format(figure.floor, figure.unit)} (${figure.floorLabel})`,
      figure.floor > 0 ? `${ratioOf(figure).toFixed(2)}×` : "—",
      describeTarget(figure),
      Object.keys(figure.target).length === 0 ? "" : meetsTarget(figure) ? "met" : "MISSED",
    ]);
  }
}
const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => row[i]?.length ?? 0))) ?? [];
for (const row of rows) {
  process.stdout.write(
    `${row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd()}\n`,
  );
}
