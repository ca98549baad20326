/**
 * The plugin's one seam to the kernel's parameters (/proc/sys/net), through `ctx.exec`:
 * procps' `sysctl` run as a process, so a runner bound to a network namespace reads and writes
 * that namespace's values (net.* sysctls are per namespace; op's own process stays in the
 * host's). Nothing else in the plugin touches the host.
 */
import type { Runner } from "../../src/exec.js";

/** Every readable key under `net.` and its value, in one process. */
export async function readNetSysctls(exec: Runner): Promise<Record<string, string>> {
  // sysctl leaves out the write-only keys (net.ipv4.route.flush) instead of failing on them.
  const { stdout } = await exec.run("sysctl", ["net"]);
  return parseSysctlOutput(stdout);
}

/** `key = value` lines (the value may be empty, or hold tabs between fields). */
export function parseSysctlOutput(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const split = line.indexOf(" = ");
    if (split > 0) values[line.slice(0, split)] = line.slice(split + 3);
    else if (line.endsWith(" =")) values[line.slice(0, -2)] = "";
  }
  return values;
}

/** Writes one key. `sysctl -w` fails (naming the key) on a key or value the kernel refuses. */
export async function writeNetSysctl(exec: Runner, key: string, value: string): Promise<void> {
  // One argument, no shell: the key was checked (net., no `=`), the value holds no newline.
  await exec.run("sysctl", ["-q", "-w", `${key}=${value}`]);
}
