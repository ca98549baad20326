/**
 * An exec audit of a representative `op apply` (network and nftables, in a namespace of its
 * own) under `strace -f -e trace=execve`: op runs no shell, ever. Every program it starts is
 * run directly, so no shell can read a name from the file as syntax. strace is required (the
 * setup script installs it): without it this test fails rather than skips.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "../support/cli.js";

const shells = new Set(["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"]);

let sandbox: CliSandbox;
const netns = `ops-audit-${randomBytes(3).toString("hex")}`;

function run(
  file: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(file, args, {
    encoding: "utf8",
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...sandbox?.env },
  });
  return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

beforeAll(() => {
  sandbox = createCliSandbox();
  expect(run("ip", ["netns", "add", netns]).status).toBe(0);
});

afterAll(() => {
  run("ip", ["netns", "delete", netns]);
  sandbox?.cleanup();
});

/** The programs a trace shows started (successful execve), in order, with their paths. */
function execs(trace: string): string[] {
  const paths: string[] = [];
  for (const line of trace.split("\n")) {
    const match = /execve\("((?:[^"\\]|\\.)*)", .* = 0$/.exec(line);
    if (match?.[1] !== undefined) paths.push(match[1]);
  }
  return paths;
}

/** Whether the file is a script (run by an interpreter the trace would not show). */
function isScript(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    return head.toString() === "#!";
  } finally {
    closeSync(fd);
  }
}

it("runs no shell in a representative op apply (network and nftables)", () => {
  const strace = spawnSync("strace", ["-V"], { encoding: "utf8" });
  expect(strace.error, "strace is missing: scripts/setup.sh installs it").toBeUndefined();

  const state = join(sandbox.dir, "audit.json");
  writeFileSync(
    state,
    JSON.stringify({
      version: 1,
      plugins: {
        network: {
          interfaces: [
            {
              name: "opsbr0",
              type: "linux-bridge",
              ipv4: { addresses: [{ ip: "198.18.77.1", prefix: 24 }] },
              bridge: { ports: ["opsv0"] },
            },
            { name: "opsv0", type: "veth", veth: { peer: "opsv0p" } },
          ],
          routes: [{ to: "198.19.77.0/24", via: "198.18.77.254", dev: "opsbr0" }],
        },
        nftables: {
          tables: [
            {
              family: "inet",
              name: "ops_audit",
              chains: [
                {
                  name: "input",
                  type: "filter",
                  hook: "input",
                  priority: 0,
                  policy: "accept",
                  // iif makes the throw-away check create an interface first.
                  rules: ['iif "opsbr0" ip saddr 198.18.66.0/24 drop', "tcp dport 22 accept"],
                },
              ],
            },
          ],
        },
      },
    }),
  );
  const traceFile = join(sandbox.dir, "execve.trace");
  const applied = run("ip", [
    "netns",
    "exec",
    netns,
    "strace",
    "-f",
    "-qq",
    "-s",
    "256",
    "-e",
    "trace=execve",
    "-o",
    traceFile,
    opBinary,
    "apply",
    state,
  ]);
  expect(applied.status, applied.stderr).toBe(0);
  expect(applied.stdout).toContain("Plan: ");
  const again = run("ip", ["netns", "exec", netns, opBinary, "apply", state, "--check"]);
  expect(again.status, again.stdout + again.stderr).toBe(0);

  const started = execs(readFileSync(traceFile, "utf8"));
  // The first exec is the launcher itself (scripts/op, a sh script that execs node with op's
  // startup snapshot); it reads no input. Everything op starts comes after it.
  expect(started[0]).toBe(opBinary);
  const byOp = started.slice(1);
  const programs = new Set(byOp.map((path) => basename(path)));
  expect([...programs].filter((program) => shells.has(program))).toEqual([]);
  expect(byOp.filter(isScript)).toEqual([]);
  // Not vacuous: the trace saw op's node and the tools it drives.
  for (const program of ["node", "ip", "nft", "nsenter"]) expect(programs).toContain(program);
});
