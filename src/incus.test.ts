/**
 * How the Incus client scopes a call to a project. The client is pointed at a small HTTP
 * server on a Unix socket that answers every call with the path it was asked for: the real
 * daemon does not say which of two `project=` parameters it read, so it cannot show this.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIncusClient, withProject } from "./incus.js";

describe("withProject", () => {
  it("adds the project to a path with or without a query", () => {
    expect(withProject("/1.0/instances", "optest-b")).toBe("/1.0/instances?project=optest-b");
    expect(withProject("/1.0/instances?recursion=1", "a b")).toBe(
      "/1.0/instances?recursion=1&project=a%20b",
    );
  });

  it("leaves a path that names a project, or when no project is given", () => {
    expect(withProject("/1.0/instances/ct1?project=p", "optest-b")).toBe(
      "/1.0/instances/ct1?project=p",
    );
    expect(withProject("/1.0/instances?recursion=1&project=p", "optest-b")).toBe(
      "/1.0/instances?recursion=1&project=p",
    );
    expect(withProject("/1.0/instances", undefined)).toBe("/1.0/instances");
    // A query value that merely mentions the word is not a project parameter.
    expect(withProject("/1.0/x/files?path=%2Fproject%3Dp", "b")).toBe(
      "/1.0/x/files?path=%2Fproject%3Dp&project=b",
    );
  });
});

describe("a client bound to a project", () => {
  let dir: string;
  let server: Server;
  let socket: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "optest-incus-"));
    socket = join(dir, "echo.socket");
    server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ type: "sync", metadata: req.url }));
    });
    server.listen(socket);
    await once(server, "listening");
  });

  afterAll(async () => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("scopes a call to its project once, and not one that names another", async () => {
    const client = createIncusClient(socket, { project: "optest-b" });
    try {
      expect(await client.request("GET", "/1.0/instances?recursion=1")).toBe(
        "/1.0/instances?recursion=1&project=optest-b",
      );
      expect(await client.request("GET", "/1.0/instances/ct1?project=p")).toBe(
        "/1.0/instances/ct1?project=p",
      );
    } finally {
      client.close();
    }
  });
});
