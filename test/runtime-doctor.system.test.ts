/**
 * `op doctor` checks what op uses: the tools it runs (nft, unshare, ip, flock, sysctl) and the
 * daemons' sockets it talks to (Incus's API, OVSDB), not tools op does not use (ovs-vsctl,
 * lxc-*). The unix socket server below is a fault injector: it accepts and never answers.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "./support/cli.js";

interface Check {
  name: string;
  required: boolean;
  ok: boolean;
  found: string;
  hint?: string;
}

let sandbox: CliSandbox;
let dir: string;
beforeAll(() => {
  sandbox = createCliSandbox();
  dir = mkdtempSync(join(tmpdir(), "ophd-doctor-"));
});
afterAll(() => {
  sandbox.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function doctor(
  env: Record<string, string> = {},
): Promise<{ status: number | null; checks: Check[]; ms: number }> {
  const started = Date.now();
  const child = spawn(opBinary, ["doctor", "--json"], {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...sandbox.env, ...env },
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  return new Promise((resolve) =>
    child.on("close", (status) =>
      resolve({
        status,
        checks: (JSON.parse(stdout) as { checks: Check[] }).checks,
        ms: Date.now() - started,
      }),
    ),
  );
}

describe("op doctor", () => {
  it("checks the tools and daemon sockets op uses, and nothing it does not use", async () => {
    const { status, checks } = await doctor();
    const names = checks.map((check) => check.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "nft",
        "nsenter",
        "ip",
        "flock",
        "Incus (socket and API)",
        "Open vSwitch (OVSDB socket)",
        "sysctl",
      ]),
    );
    expect(names.join(" ")).not.toMatch(/ovs-vsctl|lxc-create|unshare/);
    expect(JSON.stringify(checks)).not.toContain("apt-get install lxc");
    // This host runs both daemons (the system tests need them): their API answers.
    const incus = checks.find((check) => check.name === "Incus (socket and API)");
    expect(incus?.found).toMatch(/Incus \d+\.\d+/);
    const flock = checks.find((check) => check.name === "flock");
    expect(flock).toMatchObject({ ok: true, required: true });
    expect(status).toBe(0);
  });

  it("says Incus is not usable when its socket accepts but never answers, without hanging", async () => {
    const path = join(dir, "incus.sock");
    const held: Socket[] = [];
    const server = createServer((socket) => {
      held.push(socket);
      socket.resume();
    });
    await new Promise<void>((done) => server.listen(path, done));
    try {
      const { checks, ms } = await doctor({ OP_INCUS_SOCKET: path });
      const incus = checks.find((check) => check.name === "Incus (socket and API)");
      expect(incus?.ok).toBe(false);
      expect(incus?.found).toContain("Incus did not answer within 3 s");
      expect(incus?.hint).toContain("OP_INCUS_SOCKET");
      expect(ms).toBeLessThan(15_000);
    } finally {
      for (const socket of held) socket.destroy();
      server.close();
    }
  });

  it.each([
    ["from the startup snapshot", {}],
    ["from its modules", { OP_NO_SNAPSHOT: "1" }],
  ])(
    "creates nothing (%s): op's directories under missing ones are checked where op would make them",
    async (_how, start) => {
      const missing = join(dir, `not-yet-${Object.keys(start).length}`);
      const { checks } = await doctor({
        ...start,
        OP_LEDGER: join(missing, "op", "ledger"),
        OP_LOCK: join(missing, "run", "lock"),
        OP_CACHE_DIR: join(missing, "cache"),
        OP_STATUS: join(missing, "status", "status.json"),
      });
      const ledger = checks.find((check) => check.name === "ledger directory");
      expect(ledger).toMatchObject({ ok: true, required: true });
      expect(ledger?.found).toBe(
        `${join(missing, "op", "ledger")} (op would create it under ${dir})`,
      );
      expect(checks.find((check) => check.name === "lock directory")?.ok).toBe(true);
      expect(checks.find((check) => check.name === "cache directory")?.ok).toBe(true);
      expect(checks.find((check) => check.name === "status directory")?.ok).toBe(true);
      expect(existsSync(missing)).toBe(false);
    },
  );

  it("says when the status file's directory cannot be made, without failing the host for it", async () => {
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "");
    const { checks } = await doctor({ OP_STATUS: join(blocker, "status.json") });
    const status = checks.find((check) => check.name === "status directory");
    expect(status).toMatchObject({ ok: false, required: false });
    expect(status?.found).toContain(`${blocker} is not a directory`);
  });

  it("finds Open vSwitch where the environment says (OP_OVS_RUNDIR), as the plugins do", async () => {
    const { checks } = await doctor({ OP_OVS_RUNDIR: dir });
    const ovs = checks.find((check) => check.name === "Open vSwitch (OVSDB socket)");
    expect(ovs?.ok).toBe(false);
    expect(ovs?.found).toContain(`OVSDB is not reachable at ${dir}/db.sock`);
  });

  it("refuses a bad environment variable as a usage error naming it", async () => {
    const child = spawnSync(opBinary, ["doctor"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", OP_INCUS_TIMEOUT: "abc" },
    });
    expect(child.status).toBe(64);
    expect(child.stderr).toContain("OP_INCUS_TIMEOUT=abc: must be a number of seconds");
  });
});
