/**
 * The OVSDB client's framing and failure paths. A small unix-socket server stands in for
 * ovsdb-server here, only for what the real one cannot be made to do on demand (cut a
 * message in the middle, ask for an echo, never answer); test/network.ovs.system.test.ts runs the
 * client against the real ovsdb-server.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { isOutcomeUnknown } from "./outcome.js";
import { jsonStreamSplitter, OvsdbRefusal, openOvsdb } from "./ovsdb.js";

describe("jsonStreamSplitter", () => {
  it("cuts back-to-back messages, whatever the chunks", () => {
    const messages = [
      { id: 1, result: [{ rows: [{ name: 'a "quoted" }{ name', note: "back\\slash]" }] }] },
      { id: null, method: "echo", params: ["ends with a backslash\\", '\\"', "[{"] },
      { id: 2, error: { error: "timed out" }, result: null },
    ];
    const text = messages.map((m) => JSON.stringify(m)).join("");
    for (const size of [1, 2, 7, 64, text.length]) {
      const split = jsonStreamSplitter();
      const seen: unknown[] = [];
      for (let i = 0; i < text.length; i += size) seen.push(...split(text.slice(i, i + size)));
      expect(seen, `chunks of ${size}`).toEqual(messages);
    }
  });

  it("refuses a stream that closes more than it opens", () => {
    expect(() => jsonStreamSplitter()("{}}")).toThrow(/unbalanced/);
  });
});

describe("openOvsdb", () => {
  const dirs: string[] = [];
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A server on a fresh socket, answering each whole request with `respond`. */
  async function fakeServer(
    respond: (request: { id: number; method: string; params: unknown[] }, socket: Socket) => void,
  ): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "op-ovsdb-"));
    dirs.push(dir);
    const path = join(dir, "db.sock");
    const server = createServer((socket) => {
      const split = jsonStreamSplitter();
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        for (const message of split(chunk))
          respond(message as { id: number; method: string; params: unknown[] }, socket);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return path;
  }

  it("says where it looked and how to start OVS when nothing listens", async () => {
    const attempt = openOvsdb("/nonexistent/op-test/db.sock", "start it like this");
    await expect(attempt).rejects.toBeInstanceOf(OpError);
    await expect(attempt).rejects.toMatchObject({
      code: "daemon-unavailable",
      message: expect.stringMatching(/\/nonexistent\/op-test\/db\.sock: no such socket/),
      hint: "start it like this",
    });
  });

  it("answers the server's echo and reads an answer sent in pieces", async () => {
    let echoed: unknown;
    const path = await fakeServer((request, socket) => {
      if (request.method !== "transact") return;
      // Ask for an echo first, then answer in two writes cut inside a string.
      socket.write(JSON.stringify({ id: "e1", method: "echo", params: ["ping"] }));
      socket.once("data", (chunk: string) => {
        echoed = JSON.parse(chunk);
        const answer = JSON.stringify({
          id: request.id,
          result: [{ rows: [{ name: "br}0" }] }],
          error: null,
        });
        socket.write(answer.slice(0, 30));
        setTimeout(() => socket.write(answer.slice(30)), 20);
      });
    });
    const session = await openOvsdb(path, "hint");
    try {
      const results = await session.transact("Open_vSwitch", [
        { op: "select", table: "Bridge", where: [] },
      ]);
      expect(results).toEqual([{ rows: [{ name: "br}0" }] }]);
      expect(echoed).toEqual({ id: "e1", result: ["ping"], error: null });
    } finally {
      session.close();
    }
  });

  it("names the operation OVSDB refused, or the commit", async () => {
    const path = await fakeServer((request, socket) => {
      const refused =
        (request.params as unknown[]).length > 2
          ? [{}, { error: "constraint violation", details: "duplicate name" }]
          : [{}, { error: "referential integrity violation", details: "dangling" }];
      socket.write(JSON.stringify({ id: request.id, result: refused, error: null }));
    });
    const session = await openOvsdb(path, "hint");
    try {
      const two = [
        { op: "insert", table: "Bridge", row: {} },
        { op: "update", table: "Port", where: [["name", "==", "p"]], row: {} },
      ];
      const refusal = session.transact("Open_vSwitch", two);
      await expect(refusal).rejects.toBeInstanceOf(OvsdbRefusal);
      await expect(refusal).rejects.toThrow(
        'operation 2 (update Port where [["name","==","p"]]): constraint violation: duplicate name',
      );
      await expect(session.transact("Open_vSwitch", [{ op: "comment" }])).rejects.toThrow(
        "the commit: referential integrity violation: dangling",
      );
    } finally {
      session.close();
    }
  });

  it("gives up on a server that does not answer", async () => {
    const path = await fakeServer(() => {});
    const session = await openOvsdb(path, "start it", { timeoutMs: 100 });
    try {
      await expect(
        session.transact("Open_vSwitch", [{ op: "select", table: "Bridge", where: [] }]),
      ).rejects.toMatchObject({
        code: "daemon-unavailable",
        message: "OVSDB did not answer transact within 100 ms",
      });
    } finally {
      session.close();
    }
  });

  it("marks a request that was sent and never answered as of unknown outcome, and OP_OVSDB_TIMEOUT bounds every request", async () => {
    // Fault injector: accepts and never answers.
    const path = await fakeServer(() => {});
    // The caller asks for a minute; OP_OVSDB_TIMEOUT (as the settings give it) says 0.2 s.
    const session = await openOvsdb(path, "start it", { timeoutMs: 60_000, overrideMs: 200 });
    try {
      const started = Date.now();
      const error = await session
        .transact("Open_vSwitch", [{ op: "insert", table: "Bridge", row: {} }])
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((error as OpError).message).toBe("OVSDB did not answer transact within 200 ms");
      expect((error as OpError).hint).toContain("OP_OVSDB_TIMEOUT");
      expect(isOutcomeUnknown(error)).toBe(true);
    } finally {
      session.close();
    }
  });

  it("marks requests in flight when the connection drops as of unknown outcome", async () => {
    const path = await fakeServer((_request, socket) => socket.destroy());
    const session = await openOvsdb(path, "start it", { timeoutMs: 5_000 });
    try {
      const error = await session
        .transact("Open_vSwitch", [{ op: "insert", table: "Bridge", row: {} }])
        .catch((e: unknown) => e);
      expect((error as OpError).message).toContain("the connection closed");
      expect(isOutcomeUnknown(error)).toBe(true);
    } finally {
      session.close();
    }
  });

  it("monitors: answers with the rows now, then hands each update notification on", async () => {
    let monitorRequest: unknown[] = [];
    const path = await fakeServer((request, socket) => {
      if (request.method !== "monitor") return;
      monitorRequest = request.params;
      const monitorId = request.params[1];
      socket.write(
        JSON.stringify({
          id: request.id,
          result: { Bridge: { u1: { new: { name: "br0" } } } },
          error: null,
        }),
      );
      // An update for another monitor id is not this one's.
      socket.write(JSON.stringify({ id: null, method: "update", params: [99, { Bridge: {} }] }));
      socket.write(
        JSON.stringify({
          id: null,
          method: "update",
          params: [monitorId, { Bridge: { u1: { old: { name: "br0" } } } }],
        }),
      );
    });
    const session = await openOvsdb(path, "hint");
    try {
      const updates: unknown[] = [];
      let seen = () => {};
      const arrived = new Promise<void>((resolve) => {
        seen = resolve;
      });
      const initial = await session.monitor(
        "Open_vSwitch",
        { Bridge: { columns: ["name"] } },
        {
          onUpdate: (update) => {
            updates.push(update);
            seen();
          },
          onLost: () => {},
        },
      );
      expect(initial).toEqual({ Bridge: { u1: { new: { name: "br0" } } } });
      expect(monitorRequest[0]).toBe("Open_vSwitch");
      expect(monitorRequest[2]).toEqual({ Bridge: { columns: ["name"] } });
      await arrived;
      expect(updates).toEqual([{ Bridge: { u1: { old: { name: "br0" } } } }]);
    } finally {
      session.close();
    }
  });

  it("tells a monitor when the connection is lost, and not when the session is closed", async () => {
    const sockets: Socket[] = [];
    const path = await fakeServer((request, socket) => {
      sockets.push(socket);
      socket.write(JSON.stringify({ id: request.id, result: {}, error: null }));
    });
    const dropped = await openOvsdb(path, "start it");
    const loss = new Promise<OpError>((resolve) => {
      void dropped.monitor("Open_vSwitch", {}, { onUpdate: () => {}, onLost: resolve });
    });
    await new Promise((resolve) => setImmediate(resolve));
    await expect.poll(() => sockets.length).toBe(1);
    sockets[0]?.destroy();
    expect((await loss).message).toContain("the connection closed");
    dropped.close();

    const closed = await openOvsdb(path, "start it");
    const losses: OpError[] = [];
    await closed.monitor("Open_vSwitch", {}, { onUpdate: () => {}, onLost: (e) => losses.push(e) });
    const serverSide = new Promise((resolve) => sockets[1]?.on("close", resolve));
    closed.close();
    await serverSide;
    await new Promise((resolve) => setImmediate(resolve));
    expect(losses).toEqual([]);
  });
});
