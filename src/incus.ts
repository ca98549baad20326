/**
 * The one module that talks to Incus: its REST API over the unix socket with node's http (one
 * keep-alive agent, so a run reuses a few connections instead of spawning `incus` per step),
 * waiting on background operations. Every failure becomes an OpError carrying Incus's own
 * message, never a stack.
 */
import { createReadStream } from "node:fs";
import type http from "node:http";
import { OpError } from "./errors.js";

export const defaultIncusSocket = "/var/lib/incus/unix.socket";

export interface IncusRequestOptions {
  /** What the request does, in words for an error message ("creating container ct100"). */
  what?: string;
  /** How long to wait for a background operation, in seconds (default: as long as it takes). */
  waitSeconds?: number;
}

export interface IncusClient {
  readonly socketPath: string;
  /**
   * One API call. Returns the response's `metadata`; for a background operation, waits for it
   * and returns the finished operation's `metadata`.
   */
  request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options?: IncusRequestOptions,
  ): Promise<T>;
  /** Writes a file into a container (running or not), as root, mode 0644. */
  pushFile(
    instance: string,
    path: string,
    content: string,
    options?: IncusRequestOptions,
  ): Promise<void>;
  /** Imports a split image (metadata and rootfs tarballs); returns its fingerprint. */
  importImage(
    files: { metadata: string; rootfs: string },
    options?: IncusRequestOptions,
  ): Promise<string>;
  /** Drops idle connections (a CLI run ends without it; idle sockets do not hold node open). */
  close(): void;
}

interface Envelope {
  type?: "sync" | "async" | "error";
  error?: string;
  error_code?: number;
  metadata?: unknown;
}

interface Operation {
  id: string;
  status: string;
  err?: string;
  metadata?: unknown;
}

export function createIncusClient(
  socketPath: string = defaultIncusSocket,
  options: { project?: string } = {},
): IncusClient {
  // Fetched here, not imported at the top: importing node:http as ESM evaluates all of its
  // exports, undici included (~60 ms at every op start), even for runs that never use Incus.
  const http = process.getBuiltinModule("node:http");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  // Every call is scoped to the project (Incus's default project when none is given).
  const scoped = (path: string) =>
    options.project === undefined
      ? path
      : `${path}${path.includes("?") ? "&" : "?"}project=${encodeURIComponent(options.project)}`;

  const send = (
    method: string,
    path: string,
    what: string,
    write: (req: http.ClientRequest) => void,
    headers: http.OutgoingHttpHeaders,
  ): Promise<Envelope> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { socketPath, agent, method, path: scoped(path), headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", (error) => reject(unreachable(socketPath, error)));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let envelope: Envelope;
            try {
              envelope = JSON.parse(text) as Envelope;
            } catch {
              reject(
                new OpError(
                  "command-failed",
                  `${what}: Incus answered HTTP ${res.statusCode} with no JSON: ${text.slice(0, 200)}`,
                ),
              );
              return;
            }
            if (envelope.type === "error" || (res.statusCode ?? 500) >= 400) {
              reject(refused(what, envelope.error || `HTTP ${res.statusCode}`));
              return;
            }
            resolve(envelope);
          });
        },
      );
      req.on("error", (error) => reject(unreachable(socketPath, error)));
      write(req);
    });

  const waitFor = async (
    id: string,
    what: string,
    waitSeconds: number | undefined,
  ): Promise<unknown> => {
    const deadline =
      waitSeconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + waitSeconds * 1000;
    for (;;) {
      const slice = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
      const envelope = await send(
        "GET",
        `/1.0/operations/${encodeURIComponent(id)}/wait?timeout=${slice}`,
        what,
        (req) => req.end(),
        {},
      );
      const operation = envelope.metadata as Operation;
      if (operation.status === "Success") return operation.metadata;
      if (operation.status === "Failure" || operation.status === "Cancelled") {
        throw refused(what, operation.err || operation.status);
      }
      if (Date.now() >= deadline) {
        throw new OpError(
          "command-failed",
          `${what}: Incus did not finish within ${waitSeconds} s (operation ${id})`,
        );
      }
    }
  };

  const finish = async (
    envelope: Envelope,
    what: string,
    options: IncusRequestOptions,
  ): Promise<unknown> => {
    if (envelope.type !== "async") return envelope.metadata;
    const id = (envelope.metadata as Operation | undefined)?.id;
    if (id === undefined)
      throw new OpError("command-failed", `${what}: Incus started an operation without an id`);
    return waitFor(id, what, options.waitSeconds);
  };

  return {
    socketPath,
    async request<T>(
      method: string,
      path: string,
      body?: unknown,
      options: IncusRequestOptions = {},
    ): Promise<T> {
      const what = options.what ?? `${method} ${path}`;
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: http.OutgoingHttpHeaders =
        payload === undefined
          ? {}
          : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) };
      const envelope = await send(method, path, what, (req) => req.end(payload), headers);
      return (await finish(envelope, what, options)) as T;
    },
    async pushFile(instance, path, content, options = {}) {
      const what = options.what ?? `writing ${path} in ${instance}`;
      const headers = {
        "content-type": "application/octet-stream",
        "content-length": Buffer.byteLength(content),
        "x-incus-uid": "0",
        "x-incus-gid": "0",
        "x-incus-mode": "0644",
        "x-incus-type": "file",
        "x-incus-write": "overwrite",
      };
      const target = `/1.0/instances/${encodeURIComponent(instance)}/files?path=${encodeURIComponent(path)}`;
      await finish(
        await send("POST", target, what, (req) => req.end(content), headers),
        what,
        options,
      );
    },
    async importImage(files, options = {}) {
      const what = options.what ?? "importing an image";
      const boundary = `op-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
      const part = (name: string) =>
        `--${boundary}\r\ncontent-disposition: form-data; name="${name}"; filename="${name}"\r\ncontent-type: application/octet-stream\r\n\r\n`;
      const envelope = await send(
        "POST",
        "/1.0/images",
        what,
        (req) => {
          // Streams both tarballs (they can be hundreds of MB) as one multipart body.
          const pipeFile = (path: string, then: () => void) => {
            const stream = createReadStream(path);
            stream.on("error", (error) => req.destroy(error));
            stream.on("end", then);
            stream.pipe(req, { end: false });
          };
          req.write(part("metadata"));
          pipeFile(files.metadata, () => {
            req.write(`\r\n${part("rootfs")}`);
            pipeFile(files.rootfs, () => req.end(`\r\n--${boundary}--\r\n`));
          });
        },
        {
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "transfer-encoding": "chunked",
        },
      );
      const result = (await finish(envelope, what, options)) as { fingerprint?: string } | null;
      if (!result?.fingerprint)
        throw new OpError(
          "command-failed",
          `${what}: Incus did not report the image's fingerprint`,
        );
      return result.fingerprint;
    },
    close: () => agent.destroy(),
  };
}

function refused(what: string, message: string): OpError {
  return new OpError("command-failed", `${what}: Incus refused: ${message}`, {
    hint: "the message is Incus's own; `incus info --show-log NAME` shows a container's start log",
  });
}

function unreachable(socketPath: string, error: NodeJS.ErrnoException): OpError {
  const hint = `start the Incus daemon (scripts/setup-incus.sh does it on a test host), or point OP_INCUS_SOCKET at its socket`;
  switch (error.code) {
    case "ENOENT":
      return new OpError(
        "daemon-unavailable",
        `the Incus daemon is not running: no socket at ${socketPath}`,
        { hint },
      );
    case "ECONNREFUSED":
      return new OpError(
        "daemon-unavailable",
        `the Incus daemon is not running: nothing listens on ${socketPath}`,
        { hint },
      );
    case "EACCES":
    case "EPERM":
      return new OpError("permission-denied", `not allowed to use the Incus socket ${socketPath}`, {
        hint: "run op as root, or as a member of the group incusd was started with",
      });
    default:
      return new OpError(
        "daemon-unavailable",
        `lost the connection to Incus at ${socketPath}: ${error.message}`,
        { hint },
      );
  }
}
