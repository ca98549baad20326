/**
 * Timeouts and lost connections on the way to Incus. Fault injectors, in this file, stand in
 * for what the real daemon cannot be made to do on demand: a unix socket that accepts and
 * never answers, one that drops the connection once a request has arrived, and a proxy in
 * front of the real Incus socket that is killed right after it forwarded a create (Incus
 * goes on and creates the container). Containers made here are named `ophd-…`.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { defaultSettings } from "../src/host/settings.js";
import { createIncusClient } from "../src/incus.js";
import { isOutcomeUnknown } from "../src/outcome.js";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { rejection } from "./support/errors.js";

/** Incus's socket when OP_INCUS_SOCKET is not set (src/host/settings.ts). */
const defaultIncusSocket = defaultSettings.incus.socket;

let dir: string;
const servers: Server[] = [];
const sockets: Socket[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ophd-incus-"));
});
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    servers.splice(0).map((server) => new Promise((done) => server.close(() => done(null)))),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A unix socket server on a fresh path; `onConnection` decides what it does. */
async function faultServer(onConnection: (socket: Socket) => void): Promise<string> {
  const path = join(dir, `s-${randomBytes(4).toString("hex")}.sock`);
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(path, done));
  return path;
}

/** Accepts, reads everything, never answers. */
const silent = () => faultServer((socket) => socket.resume());

describe("the Incus client's timeouts and lost connections", () => {
  it("gives up on a daemon that accepts and never answers, naming Incus, the step and the socket", async () => {
    const socket = await silent();
    const client = createIncusClient(socket, { answerSeconds: 0.3 });
    const started = Date.now();
    const error = await rejection(
      client.request("GET", "/1.0/instances?recursion=1", undefined, {
        what: "listing containers",
      }),
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(error.code).toBe("daemon-unavailable");
    expect(error.message).toBe(
      `Incus did not answer within 0.3 s to listing containers (GET /1.0/instances?recursion=1) at ${socket}`,
    );
    expect(error.hint).toContain("OP_INCUS_TIMEOUT");
    // A read changes nothing: its outcome is never in doubt.
    expect(isOutcomeUnknown(error)).toBe(false);
    client.close();
  });

  it("says the outcome is unknown when a change was sent and no answer came", async () => {
    const socket = await silent();
    const client = createIncusClient(socket, { answerSeconds: 0.3 });
    const error = await rejection(
      client.request("POST", "/1.0/instances", { name: "ophd-x" }, { what: "creating ophd-x" }),
    );
    expect(isOutcomeUnknown(error)).toBe(true);
    expect(error.message).toMatch(/op cannot tell whether Incus did it/);
    client.close();
  });

  it("says the outcome is unknown when the connection is lost after a change was sent", async () => {
    // Drops the connection as soon as the request has arrived, as a daemon that died would.
    const socket = await faultServer((connection) =>
      connection.once("data", () => setTimeout(() => connection.destroy(), 20)),
    );
    const client = createIncusClient(socket, { answerSeconds: 5 });
    const error = await rejection(
      client.request("POST", "/1.0/instances", { name: "ophd-x" }, { what: "creating ophd-x" }),
    );
    expect(error.message).toContain("lost the connection to Incus");
    expect(isOutcomeUnknown(error)).toBe(true);
    client.close();
  });

  it("knows nothing was sent when nothing listens or there is no socket", async () => {
    const path = join(dir, "none.sock");
    const client = createIncusClient(path, { answerSeconds: 1 });
    const error = await rejection(client.request("POST", "/1.0/instances", {}));
    expect(error.message).toContain("no socket at");
    expect(isOutcomeUnknown(error)).toBe(false);
    client.close();
  });

  it("waits on a long operation with progress, and an operation past its deadline has an unknown outcome", async () => {
    // Answers a change with a background operation that never finishes.
    const socket = await faultServer((connection) => {
      connection.on("data", (chunk: Buffer) => {
        const running = chunk.toString().startsWith("GET /1.0/operations/");
        const body = JSON.stringify(
          running
            ? { type: "sync", metadata: { id: "op1", status: "Running" } }
            : { type: "async", metadata: { id: "op1", status: "Running" } },
        );
        connection.write(
          `HTTP/1.1 ${running ? 200 : 202} OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
    });
    const progress: string[] = [];
    const client = createIncusClient(socket, {
      answerSeconds: 2,
      onProgress: (line) => progress.push(line),
    });
    const error = await rejection(
      client.request(
        "PUT",
        "/1.0/instances/ophd-x/state",
        { action: "start" },
        { what: "starting container ophd-x", waitSeconds: 2 },
      ),
    );
    expect(error.message).toBe(
      "starting container ophd-x: Incus did not finish within 2 s (operation op1 is still Running)",
    );
    expect(isOutcomeUnknown(error)).toBe(true);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatch(/^starting container ophd-x: still waiting for Incus \(\d+ s/);
    client.close();
  });
});

/** Runs the built op without blocking this process (the fault servers live in it). */
const op = (sandbox: CliSandbox, args: string[], env: Record<string, string>) =>
  sandbox.start(args, { env }).done;

function containerFile(sandbox: CliSandbox, name: string): string {
  const path = join(sandbox.dir, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      plugins: { lxc: { containers: [{ id: name, image: "op-test/busybox", running: false }] } },
    }),
  );
  return path;
}

describe("op against an Incus that never answers", () => {
  let sandbox: CliSandbox;
  beforeAll(() => {
    sandbox = createCliSandbox();
  });
  afterAll(() => sandbox.cleanup());

  it("op plan and op apply fail within the timeout with a clear error, and the lock is free after", async () => {
    const socket = await silent();
    const env = { OP_INCUS_SOCKET: socket, OP_INCUS_TIMEOUT: "1" };
    const file = containerFile(sandbox, "ophd-never");
    for (const args of [
      ["plan", file],
      ["apply", file],
    ]) {
      const result = await op(sandbox, args, env);
      expect(result.status, result.stderr).toBe(1);
      expect(result.ms).toBeLessThan(15_000);
      expect(result.stderr).toContain(`Incus did not answer within 1 s to listing containers`);
      expect(result.stderr).toContain(socket);
    }
    expect(spawnSync("flock", ["-n", sandbox.env.OP_LOCK as string, "true"]).status).toBe(0);
  });

  it("refuses a timeout that is not a number of seconds", async () => {
    const result = await op(sandbox, ["plan", containerFile(sandbox, "ophd-bad")], {
      OP_INCUS_TIMEOUT: "soon",
    });
    expect(result.stderr).toContain("OP_INCUS_TIMEOUT=soon: must be a number of seconds");
    expect(result.status).not.toBe(70);
  });
});

describe("a connection to the real Incus lost after a create was sent", () => {
  let sandbox: CliSandbox;
  const name = `ophd-${randomBytes(3).toString("hex")}`;
  const incus = createIncusClient(defaultIncusSocket);
  beforeAll(() => {
    sandbox = createCliSandbox();
  });
  afterAll(async () => {
    // Incus may still be finishing the create op lost track of: retry while it refuses.
    for (let attempt = 0; attempt < 20; attempt++) {
      const gone = await incus
        .request("DELETE", `/1.0/instances/${name}`, undefined, { waitSeconds: 60 })
        .then(
          () => true,
          (error: unknown) => /not found/i.test(String((error as Error).message)),
        );
      if (gone) break;
      await new Promise((done) => setTimeout(done, 500));
    }
    incus.close();
    sandbox.cleanup();
  });

  /**
   * A proxy to the real socket that forwards everything, and once it has forwarded a request
   * to create an instance, cuts every connection and stops listening: to op, Incus is gone.
   */
  async function killedAfterCreate(): Promise<string> {
    let server: Server | undefined;
    const cut: Socket[] = [];
    const path = await faultServer((client) => {
      const upstream = createConnection(defaultIncusSocket);
      upstream.on("error", () => {});
      cut.push(client, upstream);
      upstream.pipe(client);
      client.on("data", (chunk: Buffer) => {
        upstream.write(chunk);
        if (chunk.toString().startsWith("POST /1.0/instances ")) {
          setTimeout(() => {
            for (const socket of cut) socket.destroy();
            server?.close();
          }, 50);
        }
      });
    });
    server = servers.at(-1);
    return path;
  }

  it("records `unknown`, not `failed`, and Incus did create the container", async () => {
    const proxy = await killedAfterCreate();
    const file = containerFile(sandbox, name);
    const result = await op(sandbox, ["apply", file, "--json"], { OP_INCUS_SOCKET: proxy });
    expect(result.status, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout) as {
      outcomes: { id: string; status: string; error?: string }[];
    };
    expect(report.outcomes).toEqual([expect.objectContaining({ id: name, status: "unknown" })]);
    const exported = await op(sandbox, ["ledger", "export"], {});
    const statuses = exported.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { target: string; status: string; error?: string })
      .filter((record) => record.target === name)
      .map((record) => record.status);
    expect(statuses).toEqual(["intent", "unknown"]);
    // What op could not know: Incus went on and made it.
    let made = false;
    for (let i = 0; i < 60 && !made; i++) {
      made = await incus
        .request("GET", `/1.0/instances/${name}`)
        .then(() => true)
        .catch(() => false);
      if (!made) await new Promise((done) => setTimeout(done, 500));
    }
    expect(made).toBe(true);
  });

  it("the next run says so at its start and settles it from what it reads", async () => {
    const file = containerFile(sandbox, name);
    const result = await op(sandbox, ["apply", file], {});
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      new RegExp(
        `op: run [0-9a-f]{8} was interrupted: 1 whose outcome op could not know \\(create lxc ${name}\\)`,
      ),
    );
    expect(result.stdout).toContain(
      `settle create lxc ${name}: outcome unknown; this run found the host matching the file for ${name}`,
    );
    const exported = await op(sandbox, ["ledger", "export"], {});
    const records = exported.stdout
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as { seq: number; target: string; status: string; settles?: number },
      )
      .filter((record) => record.target === name);
    expect(records.map((r) => r.status)).toEqual(["intent", "unknown", "settled"]);
    expect(records[2]?.settles).toBe(records[0]?.seq);
    expect((await op(sandbox, ["ledger", "verify"], {})).status).toBe(0);
  });
});

describe("reading a file from a real container", () => {
  const name = `ophd-${randomBytes(3).toString("hex")}`;
  const incus = createIncusClient(defaultIncusSocket);
  beforeAll(async () => {
    await incus.request("POST", "/1.0/instances", {
      name,
      source: { type: "image", alias: "op-test/busybox" },
    });
  });
  afterAll(async () => {
    await incus.request("DELETE", `/1.0/instances/${name}`).catch(() => undefined);
    incus.close();
  });

  it("gives a file's bytes or type, undefined for no such file, and refuses a directory or a missing container", async () => {
    expect((await incus.readFile(name, "/etc/passwd"))?.toString()).toBe(
      "root:x:0:0:root:/root:/bin/sh\n",
    );
    expect(await incus.readFile(name, "/etc/no-such-file")).toBeUndefined();
    expect(await incus.fileType(name, "/bin/busybox")).toBe("file");
    expect(await incus.fileType(name, "/etc")).toBe("directory");
    expect(await incus.fileType(name, "/usr/sbin/sshd")).toBeUndefined();
    expect((await rejection(incus.readFile(name, "/etc"))).message).toMatch(
      /\/etc is not a regular file/,
    );
    expect((await rejection(incus.readFile(`${name}x`, "/etc/passwd"))).message).toMatch(
      /Instance not found/,
    );
  });
});
