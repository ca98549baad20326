/**
 * The hostile-input corpus: every bad state file under test/hostile/cases/<area>/ is run
 * through the built op (scripts/op) the way a user runs it, and must be refused: exit 1
 * (never 0, never 70 "bug in op"), within a time limit, with stderr naming the expected JSON
 * path (or text) and message, and with output of bounded size free of raw control
 * characters. Then `op apply` of every case must refuse too, and nothing may have changed:
 * the namespace the applies run in (links, nftables), the host's links and Incus instances
 * the cases name, and the ledger. What a case is: see corpus.ts.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "../support/cli.js";
import { type HostileCase, loadCases } from "./corpus.js";

/** A refusal takes a fraction of a second; this is the line between slow and hung. */
const caseTimeoutMs = 30_000;
/** Output of one refusal: a few error lines, never the echo of a huge value. */
const maxOutputBytes = 64 * 1024;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let sandbox: CliSandbox;
let netns: { name: string; run(command: string, args: string[]): string; remove(): void };

/** The namespace the corpus runs in (prefix ops-, this helper's). */
function createNamespace(): typeof netns {
  const name = `ops-hostile-${randomBytes(3).toString("hex")}`;
  command("ip", ["netns", "add", name]);
  return {
    name,
    run: (program, args) => command("ip", ["netns", "exec", name, program, ...args]),
    remove: () => command("ip", ["netns", "delete", name]),
  };
}

function op(args: string[], input?: string): Run {
  const result = spawnSync("ip", ["netns", "exec", netns.name, opBinary, ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...sandbox.env },
    timeout: caseTimeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 16 * maxOutputBytes,
    ...(input === undefined ? {} : { input }),
  });
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
  };
}

/** What a refusal must look like, whatever the command. */
function expectRefused(run: Run, hostile: HostileCase, what: string): void {
  const context = `${hostile.area}/${hostile.name} (${what}): ${run.stderr.slice(0, 2000)}`;
  expect(run.signal, `${context}: hung or killed`).toBeNull();
  expect(run.status, context).toBe(1);
  expect(Buffer.byteLength(run.stdout) + Buffer.byteLength(run.stderr), context).toBeLessThan(
    maxOutputBytes,
  );
  expect(run.stderr, context).toContain(hostile.expectedPath);
  if (hostile.fragment !== undefined) expect(run.stderr, context).toContain(hostile.fragment);
  expect(run.stderr, context).not.toContain("internal error");
  // A name with a newline or a terminal escape is shown escaped, never raw.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: raw control characters are what is refused
  expect(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(run.stderr), context).toBe(false);
}

/**
 * Strings of a case file short enough to be a name (links, containers), and the `ct{id}` names
 * of its ids: what to watch. (Only ids: a `ct{n}` of every number would watch the `ct100` that
 * test/lxc-cli.system.test.ts creates at the same time.)
 */
function namesIn(cases: readonly HostileCase[]): Set<string> {
  const names = new Set<string>();
  const walk = (value: unknown, key?: string): void => {
    if (typeof value === "string" && value.length <= 64) {
      names.add(value);
      if (key === "id") names.add(`ct${value}`);
    } else if (typeof value === "number" && key === "id") names.add(`ct${value}`);
    else if (Array.isArray(value)) for (const item of value) walk(item, key);
    else if (value !== null && typeof value === "object")
      for (const [field, inner] of Object.entries(value)) walk(inner, field);
  };
  for (const hostile of cases) {
    if (extname(hostile.file) !== ".json") continue;
    try {
      walk(JSON.parse(readFileSync(hostile.file, "utf8")));
    } catch {
      // a case whose point is that it does not parse names nothing
    }
  }
  return names;
}

function command(file: string, args: string[]): string {
  const result = spawnSync(file, args, { encoding: "utf8", timeout: caseTimeoutMs });
  if (result.status !== 0) throw new Error(`${file} ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

/** The state every refusal must leave as it was. */
function snapshot(watched: Set<string>): Record<string, unknown> {
  const links = (json: string) =>
    (JSON.parse(json) as Array<{ ifname: string; flags?: string[]; mtu?: number }>).map(
      ({ ifname, flags, mtu }) => ({ ifname, flags, mtu }),
    );
  const incus = spawnSync("incus", ["list", "--format", "json"], {
    encoding: "utf8",
    timeout: caseTimeoutMs,
  });
  const instances =
    incus.status === 0
      ? (JSON.parse(incus.stdout) as Array<{ name: string; status: string; config: object }>)
          .filter((instance) => watched.has(instance.name))
          .map(({ name, status, config }) => ({ name, status, config }))
      : "incus does not answer";
  return {
    namespaceLinks: links(netns.run("ip", ["-j", "link"])),
    namespaceRuleset: netns.run("nft", ["-j", "list", "ruleset"]),
    hostLinks: links(command("ip", ["-j", "link"])).filter((link) => watched.has(link.ifname)),
    instances,
    ledger: op(["ledger", "export"]).stdout,
  };
}

const cases = loadCases();

function areasOf(list: readonly HostileCase[]): string[] {
  return [...new Set(list.map((c) => c.area))].sort();
}

beforeAll(() => {
  sandbox = createCliSandbox();
  netns = createNamespace();
  netns.run("ip", ["link", "set", "lo", "up"]);
});

afterAll(() => {
  netns?.remove();
  sandbox?.cleanup();
});

describe("the hostile corpus", () => {
  it("has cases in every area, each with its expectation", () => {
    const areas = areasOf(cases);
    for (const area of ["state", "cli", "nftables", "lxc", "network", "sysctl", "planfile"]) {
      expect(areas).toContain(area);
    }
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });
});

// One pair of tests per area, so a failure names its area. Each op run has its own limit
// (caseTimeoutMs), which is what catches a hang; a test's limit only has to outlast an area's
// runs one after another on a loaded two-CPU machine.
const areaTimeoutMs = 600_000;

describe.each(areasOf(cases))("the hostile corpus: %s", (area) => {
  const inArea = cases.filter((c) => c.area === area);

  it(
    "refuses every case with exit 1, its path and message, bounded output, no hang",
    () => {
      for (const hostile of inArea) {
        expectRefused(op([hostile.command, hostile.file]), hostile, hostile.command);
      }
    },
    areaTimeoutMs,
  );

  it(
    "refuses every case in op apply too, and changes nothing on the host or in the ledger",
    () => {
      // A ledger with records and a table of op's in the namespace: what a refusal must not touch.
      const good = join(sandbox.dir, "good.json");
      writeFileSync(
        good,
        JSON.stringify({
          version: 1,
          plugins: { nftables: { tables: [{ family: "inet", name: "ops_hostile_ok" }] } },
        }),
      );
      const applied = op(["apply", good]);
      expect(applied.status, applied.stderr).toBe(0);
      const watched = namesIn(inArea);
      const before = snapshot(watched);
      expect(before.ledger).toContain("ops_hostile_ok");
      expect(before.namespaceRuleset).toContain("ops_hostile_ok");
      for (const hostile of inArea) expectRefused(op(["apply", hostile.file]), hostile, "apply");
      expect(snapshot(watched)).toEqual(before);
    },
    areaTimeoutMs,
  );
});

describe("op's refusals beyond the corpus", () => {
  it("reads a state file from stdin with -, and refuses a bad one the same way", () => {
    const good = op(["validate", "-"], '{"version": 1, "plugins": {}}');
    expect(good.status, good.stderr).toBe(0);
    const [first] = cases.filter((c) => c.command === "validate" && extname(c.file) === ".json");
    if (first === undefined) throw new Error("no JSON case to send through stdin");
    expectRefused(op(["validate", "-"], readFileSync(first.file, "utf8")), first, "stdin");
    const plan = op(["plan", "-"], '{"version": 1, "plugins": {"nftables": {"tables": []}}}');
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("No changes");
  });

  it("refuses a FIFO and a device as the state file at once", () => {
    const fifo = join(sandbox.dir, "state.fifo");
    command("mkfifo", [fifo]);
    for (const [path, kind] of [
      [fifo, "a FIFO"],
      ["/dev/zero", "a character device"],
    ] as const) {
      for (const verb of ["validate", "plan", "apply"]) {
        const run = op([verb, path]);
        expect(run.signal, `${verb} ${path} hung`).toBeNull();
        expect(run.status, run.stderr).toBe(1);
        expect(run.stderr).toContain(`${path}: the state file is ${kind}, not a regular file`);
      }
    }
  });

  it("keeps op's cache directory 0700 under umask 000, started from its modules or its snapshot", () => {
    for (const fromModules of [true, false]) {
      const cacheDir = join(sandbox.dir, `cache-umask-${fromModules}`);
      const file = join(sandbox.dir, "umask.json");
      writeFileSync(
        file,
        JSON.stringify({
          version: 1,
          plugins: { nftables: { tables: [{ family: "inet", name: "ops_umask" }] } },
        }),
      );
      // A shell here only to set the umask for op; op itself starts none.
      const result = spawnSync(
        "sh",
        ["-c", 'umask 000; exec ip netns exec "$0" "$1" plan "$2"', netns.name, opBinary, file],
        {
          encoding: "utf8",
          timeout: caseTimeoutMs,
          env: {
            PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
            ...sandbox.env,
            OP_CACHE_DIR: cacheDir,
            ...(fromModules ? { OP_NO_SNAPSHOT: "1" } : {}),
          },
        },
      );
      expect(result.status, result.stderr).toBe(0);
      expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(cacheDir, "nftables")).mode & 0o777).toBe(0o700);
    }
  });

  it("refuses bad option values with exit 64 and a clear message", () => {
    const file = join(sandbox.dir, "empty.json");
    writeFileSync(file, '{"version": 1, "plugins": {}}');
    for (const [args, message] of [
      [
        ["apply", file, "--concurrency", "1025"],
        "--concurrency must be a whole number from 1 to 1024",
      ],
      [
        ["apply", file, "--concurrency", "0"],
        "--concurrency must be a whole number from 1 to 1024",
      ],
      [["apply", file, "--concurrency", "1e3"], "--concurrency must be a whole number"],
      [["apply", file, "--lock-timeout", "-1"], "--lock-timeout must be a whole number"],
      [["--ledger", "", "ledger", "verify"], "--ledger must not be empty"],
      [["--ledger-key", " ", "apply", file], "--ledger-key must not be empty"],
      [["ledger", "verify", "--trusted", ""], "--trusted must not be empty"],
    ] as const) {
      const run = op([...args]);
      expect(run.status, `${args.join(" ")}: ${run.stderr}`).toBe(64);
      expect(run.stderr).toContain(message);
    }
  });
});

it("knows a case by its files (the runner's own rules)", () => {
  const dir = join(sandbox?.dir ?? "/tmp", `ops-hostile-rules-${randomBytes(3).toString("hex")}`);
  const area = join(dir, "x");
  command("mkdir", ["-p", area]);
  writeFileSync(join(area, "a.json"), "{}");
  writeFileSync(join(area, "a.expect"), "/version\nneeds: plan\nmissing\n");
  expect(loadCases(dir)).toEqual([
    {
      area: "x",
      name: "a",
      file: join(area, "a.json"),
      expectedPath: "/version",
      fragment: "missing",
      command: "plan",
    },
  ]);
  writeFileSync(join(area, "b.yaml"), "x: 1\n");
  expect(() => loadCases(dir)).toThrow("x/b.yaml has no b.expect");
  command("rm", ["-r", dir]);
});
