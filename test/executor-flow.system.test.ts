/**
 * The executor's whole flow, as a build service would drive op on the real daemons: an image
 * built from the cached Debian system tarball, a container started from it on a Linux bridge
 * op makes, an input tree pushed in, a command run on it, the result pulled out, a graceful
 * stop with a 30 s limit, and everything deleted. Every step is the built `op` binary; each
 * step's wall time is printed (the README gives a run's figures). Prefix `opxf`.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { sh } from "./support/lxc.js";

const cached = "/var/cache/op-test/debian-cloud/rootfs.tar.gz";
const tag = randomBytes(3).toString("hex");
const name = `opxf-${tag}`;
const bridge = `opxfbr${tag}`;
const alias = `opxf/debian-${tag}`;
let sandbox: CliSandbox;

const image = {
  alias,
  tarball: cached,
  adapt: {
    networkd: true,
    lxc_generator: true,
    templates: { "/etc/hostname": "{{ container.name }}\n" },
    properties: { os: "debian", release: "12", description: "opxf executor flow" },
  },
};
const network = { interfaces: [{ name: bridge, type: "linux-bridge" }] };
const container = (running: boolean) => ({
  id: name,
  image: alias,
  bridge,
  running,
  stop_timeout: 30,
});

function stateFile(file: string, plugins: object): string {
  const path = join(sandbox.dir, file);
  writeFileSync(path, JSON.stringify({ version: 1, plugins }));
  return path;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const timings: [string, number][] = [];

/** Runs `op ARGS`, expects exit 0, and notes the step's wall time. */
function step(what: string, args: string[]): string {
  const started = process.hrtime.bigint();
  const result = sandbox.op(args);
  timings.push([what, Number(process.hrtime.bigint() - started) / 1e6]);
  expect(result.status, `${what}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

beforeAll(() => {
  if (!existsSync(cached))
    throw new Error(`${cached} is missing: scripts/setup.sh --tests builds it`);
  sandbox = createCliSandbox();
});

afterAll(() => {
  for (const args of [
    ["delete", "--force", name],
    ["image", "delete", alias],
  ]) {
    try {
      sh("incus", args);
    } catch {
      // Deleted by the flow itself, or never made.
    }
  }
  try {
    sh("ip", ["link", "delete", bridge]);
  } catch {
    // Deleted by the flow.
  }
  const total = timings.reduce((sum, [, ms]) => sum + ms, 0);
  process.stdout.write(
    `executor flow: ${timings.map(([what, ms]) => `${what} ${(ms / 1000).toFixed(1)} s`).join(", ")}; total ${(total / 1000).toFixed(1)} s\n`,
  );
  sandbox?.cleanup();
});

describe("the executor flow", () => {
  it("imports, creates and starts, pushes, runs, pulls, stops gracefully and deletes", () => {
    const up = stateFile("up.json", {
      network,
      lxc: { images: [image], containers: [container(true)] },
    });
    step("import + create + start", ["apply", up]);
    expect(sh("incus", ["list", name, "-c", "s", "-f", "csv"]).trim()).toBe("RUNNING");
    expect(sh("incus", ["config", "device", "get", name, "eth0", "parent"]).trim()).toBe(bridge);

    const input = join(sandbox.dir, "input");
    mkdirSync(join(input, "src"), { recursive: true });
    writeFileSync(join(input, "src", "a.txt"), "alpha\n");
    writeFileSync(join(input, "src", "b.bin"), randomBytes(256 * 1024));
    step("push", ["file", "push", "-r", "-p", input, `${name}:/work/`]);

    const script =
      "cd /work/input && find src -type f | sort | xargs sha256sum > /work/out.txt && echo built";
    const built = step("exec", ["exec", name, "--", "sh", "-c", script]);
    expect(built).toBe("built\n");

    const output = join(sandbox.dir, "out.txt");
    step("pull", ["file", "pull", `${name}:/work/out.txt`, output]);
    expect(readFileSync(output, "utf8")).toBe(
      `${sha256(join(input, "src", "a.txt"))}  src/a.txt\n${sha256(join(input, "src", "b.bin"))}  src/b.bin\n`,
    );

    step("stop (30 s limit)", [
      "apply",
      stateFile("stop.json", { network, lxc: { images: [image], containers: [container(false)] } }),
    ]);
    expect(sh("incus", ["list", name, "-c", "s", "-f", "csv"]).trim()).toBe("STOPPED");

    const gone = stateFile("gone.json", {
      network: { interfaces: [{ name: bridge, type: "linux-bridge", ensure: "absent" }] },
      lxc: {
        images: [{ alias, ensure: "absent" }],
        containers: [{ id: name, ensure: "absent" }],
      },
    });
    step("delete", ["apply", gone]);
    expect(sh("incus", ["list", "-c", "n", "-f", "csv"])).not.toContain(name);
    expect(sh("incus", ["image", "list", "-c", "l", "-f", "csv"])).not.toContain(alias);
    expect(sandbox.op(["ledger", "verify"]).status).toBe(0);
  });
});
