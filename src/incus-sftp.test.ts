/**
 * The SFTP writer against a small server of the test's own on a unix socket (the real daemon
 * is in test/lxc-files.system.test.ts): the content lands whole at its offsets with writes in
 * flight, the owner is set before the mode, and a refused write names the file.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { createIncusClient } from "./incus.js";
import { openSftp } from "./incus-sftp.js";

interface Seen {
  content: Buffer;
  /** OPEN, FSETSTAT and CLOSE in order, with what they set. */
  steps: string[];
  /** The most WRITEs unanswered at once. */
  inFlight: number;
}

const dir = mkdtempSync(join(tmpdir(), "opfl-sftp-"));
const socketPath = join(dir, "incus.socket");
let server: Server;
let seen: Seen;
/** The WRITE at this offset is answered with a failure. */
let failAt: number | undefined;

/** A minimal SFTP v3 server: answers writes in batches, to see how many a client has in flight. */
function serve(socket: Socket): void {
  let pending = Buffer.alloc(0);
  let unanswered: Buffer[] = [];
  let quiet: NodeJS.Timeout | undefined;
  const packet = (type: number, id: number, ...parts: Buffer[]) => {
    const body = Buffer.concat([Buffer.from([type]), u32(id), ...parts]);
    return Buffer.concat([u32(body.length), body]);
  };
  const status = (id: number, code: number, message = "") =>
    packet(101, id, u32(code), u32(message.length), Buffer.from(message), u32(0));
  const flush = () => {
    seen.inFlight = Math.max(seen.inFlight, unanswered.length);
    for (const answer of unanswered) socket.write(answer);
    unanswered = [];
  };
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
      const length = pending.readUInt32BE(0);
      const type = pending[4];
      const body = pending.subarray(5, 4 + length);
      pending = pending.subarray(4 + length);
      if (type === 1) {
        socket.write(Buffer.concat([u32(5), Buffer.from([2]), u32(3)]));
        continue;
      }
      const id = body.readUInt32BE(0);
      const stringAt = (at: number) => body.subarray(at + 4, at + 4 + body.readUInt32BE(at));
      if (type === 3) {
        const name = stringAt(4).toString();
        const mode = body.readUInt32BE(4 + 4 + name.length + 4 + 4);
        seen.steps.push(`open ${name} ${mode.toString(8)}`);
        socket.write(packet(102, id, u32(1), Buffer.from("h")));
      } else if (type === 6) {
        const offset = Number(body.readBigUInt64BE(4 + 4 + 1));
        const data = stringAt(4 + 4 + 1 + 8);
        if (offset === failAt) unanswered.push(status(id, 4, "disk full"));
        else {
          data.copy(seen.content, offset);
          unanswered.push(status(id, 0));
        }
        // Held until 32 are owed (a client that waits for each answer would stall here
        // until the quiet-time flush), then answered together.
        if (unanswered.length >= 32) flush();
        else {
          clearTimeout(quiet);
          quiet = setTimeout(flush, 50);
        }
      } else if (type === 10) {
        const flags = body.readUInt32BE(4 + 4 + 1);
        const value = (n: number) => body.readUInt32BE(4 + 4 + 1 + 4 + n * 4);
        seen.steps.push(
          flags === 2 ? `owner ${value(0)}:${value(1)}` : `mode ${value(0).toString(8)}`,
        );
        socket.write(status(id, 0));
      } else if (type === 4) {
        seen.steps.push("close");
        socket.write(status(id, 0));
      }
    }
  });
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value, 0);
  return buffer;
}

beforeAll(async () => {
  server = createServer((_req, res) => res.writeHead(404).end('{"error":"Not Found"}'));
  server.on("upgrade", (req, socket: Socket) => {
    expect(req.url).toBe("/1.0/instances/ct1/sftp?project=p1");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: sftp\r\nConnection: Upgrade\r\n\r\n",
    );
    serve(socket);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("writing a file over SFTP", () => {
  const source = randomBytes(3 * 1024 * 1024 + 12345);
  const read = (buffer: Buffer, position: number) =>
    Promise.resolve(
      source.copy(buffer, 0, position, Math.min(position + buffer.length, source.length)),
    );

  it("sends the content whole, writes in flight, then the owner and the mode", async () => {
    seen = { content: Buffer.alloc(source.length), steps: [], inFlight: 0 };
    failAt = undefined;
    const session = await openSftp(
      createIncusClient(socketPath),
      "ct1",
      "p1",
      "writing into p1/ct1",
    );
    try {
      const written = await session.writeFile("/root/f", read, { mode: 0o4750, uid: 1000, gid: 5 });
      expect(written).toBe(source.length);
    } finally {
      session.close();
    }
    expect(seen.content.equals(source)).toBe(true);
    expect(seen.inFlight).toBe(32);
    expect(seen.steps).toEqual(["open /root/f 4750", "owner 1000:5", "mode 4750", "close"]);
  });

  it("refuses with the file's name and the server's words when a write fails", async () => {
    seen = { content: Buffer.alloc(source.length), steps: [], inFlight: 0 };
    failAt = 1024 * 1024;
    const session = await openSftp(
      createIncusClient(socketPath),
      "ct1",
      "p1",
      "writing into p1/ct1",
    );
    const error = await session
      .writeFile("/root/g", read, { mode: 0o644, uid: 0, gid: 0 })
      .catch((e: unknown) => e);
    session.close();
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toBe(
      "writing into p1/ct1: writing /root/g: Incus refused: disk full",
    );
    // No owner or mode is set on a file that failed; its handle is closed all the same.
    expect(seen.steps).toEqual(["open /root/g 644", "close"]);
  });
});
