/**
 * An image upload from streams (images op builds as it uploads them): both parts arrive in
 * order inside one multipart body with its closing boundary, and a body stream that fails
 * with op's own error fails the import with that error, not as a lost daemon. The client
 * talks to a small HTTP server on a Unix socket that keeps what it was sent.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { createIncusClient } from "./incus.js";

let dir: string;
let server: Server;
let socket: string;
const bodies: { type: string; body: string }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "optb-incus-"));
  socket = join(dir, "upload.socket");
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    bodies.push({
      type: req.headers["content-type"] ?? "",
      body: Buffer.concat(chunks).toString(),
    });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ type: "sync", metadata: { fingerprint: "f".repeat(64) } }));
  });
  server.listen(socket);
  await once(server, "listening");
});

afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("importImage from streams", () => {
  it("sends both parts in order in one multipart body, closed by its boundary", async () => {
    const client = createIncusClient(socket);
    try {
      const fingerprint = await client.importImage({
        metadata: Readable.from([Buffer.from("META")]),
        rootfs: Readable.from([Buffer.from("ROOT"), Buffer.from("FS")]),
      });
      expect(fingerprint).toBe("f".repeat(64));
    } finally {
      client.close();
    }
    const sent = bodies.at(-1) as { type: string; body: string };
    const boundary = /boundary=(.+)$/.exec(sent.type)?.[1] as string;
    expect(sent.body).toMatch(
      new RegExp(
        `name="metadata"[^]*\\r\\n\\r\\nMETA\\r\\n--${boundary}\\r\\n[^]*name="rootfs"[^]*\\r\\n\\r\\nROOTFS\\r\\n--${boundary}--\\r\\n$`,
      ),
    );
  });

  it("fails with the body stream's own error when it refuses its source", async () => {
    const client = createIncusClient(socket);
    const refused = new OpError("invalid-state", "/srv/rootfs.tar changed since the plan");
    const rootfs = new Readable({
      read() {
        this.destroy(refused);
      },
    });
    try {
      await expect(
        client.importImage({ metadata: Readable.from([Buffer.from("META")]), rootfs }),
      ).rejects.toBe(refused);
    } finally {
      client.close();
    }
  });
});
