/**
 * The one module that talks to Incus: its REST API over the unix socket with node's http, or
 * over HTTPS with a client certificate to a remote Incus (`plugins.lxc.remote`), one
 * keep-alive agent either way (a run reuses a few connections instead of spawning `incus` per
 * step), waiting on background operations. Every failure becomes an OpError carrying Incus's
 * own message, never a stack.
 */
import { createReadStream, createWriteStream, statSync } from "node:fs";
import type http from "node:http";
import type { Readable } from "node:stream";
import { OpError } from "./errors.js";
import { OutcomeUnknown } from "./outcome.js";

/**
 * How long op waits for Incus, in seconds. An answer is what Incus sends back to one HTTP
 * request: a read (GET) is answered in well under a second, a change only starts a
 * background operation; an operation (create, start, stop, delete) can take a while.
 */
export const incusTimeouts = {
  /** Answer to a GET (OP_INCUS_TIMEOUT overrides this and the next). */
  read: 10,
  /** Answer to a request that changes something (the operation runs after it). */
  change: 30,
  /** A background operation, unless its caller says otherwise (OP_INCUS_OPERATION_TIMEOUT). */
  operation: 300,
  /** Uploading an image's tarballs, which can be hundreds of MB. */
  upload: 600,
  /** How often a long operation is reported as still running. */
  progress: 30,
} as const;

export interface IncusRequestOptions {
  /** What the request does, in words for an error message ("creating container ct100"). */
  what?: string;
  /** How long to wait for a background operation, in seconds (default: `operation` above). */
  waitSeconds?: number;
  /**
   * Return a background operation as Incus started it (its id, and its metadata such as the
   * websocket secrets of an exec), not wait for it: an exec runs only once its sockets connect.
   */
  detach?: boolean;
}

export interface IncusClientOptions {
  project?: string;
  /** Seconds to wait for Incus's answer to one request (default: read or change above). */
  answerSeconds?: number;
  /** Default seconds a background operation may take (default: `operation` above). */
  operationSeconds?: number;
  /** Told when a background operation is still running, every `progress` seconds. */
  onProgress?: (message: string) => void;
}

/**
 * An Incus reached over HTTPS (plugins.lxc.remote): the client certificate it trusts, and the
 * SHA-256 fingerprint op pins its server certificate to (Incus's certificates are
 * self-signed, so there is no CA to check; the `incus` client pins the same way).
 */
export interface IncusRemote {
  /** `https://HOST[:PORT]`, tried in order; the first that answers serves the whole run. */
  urls: readonly string[];
  /** PEM text (the caller read and checked the files). */
  clientCert: string;
  clientKey: string;
  /** 64 lower-case hex digits, no colons. */
  fingerprint: string;
}

export interface IncusClient {
  /** The unix socket; for a remote client, its URLs (for messages only). */
  readonly socketPath: string;
  /** Set for a client that reaches Incus over HTTPS: nothing it reads is on this host. */
  readonly remote?: IncusRemote;
  /**
   * Where a websocket of `path` (an operation's exec or events socket) is, and the options
   * `ws` needs to reach it the way this client does (the pinned TLS agent for a remote).
   */
  websocket(path: string): Promise<{ url: string; options: { agent?: http.Agent } }>;
  /** The project every call is scoped to, when the client was made for one. */
  readonly project?: string;
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
    options?: IncusRequestOptions & { project?: string },
  ): Promise<void>;
  /**
   * Reads a file from a container (running or not): its bytes, or undefined when there is no
   * such file. `project` scopes the call for a client of the default project.
   */
  readFile(
    instance: string,
    path: string,
    options?: IncusRequestOptions & { project?: string },
  ): Promise<Buffer | undefined>;
  /**
   * What is at `path` in a container (`file`, `directory`, `symlink`), without reading it; or
   * undefined when nothing is (or the container is gone: a HEAD answer has no message).
   */
  fileType(
    instance: string,
    path: string,
    options?: IncusRequestOptions & { project?: string },
  ): Promise<string | undefined>;
  /**
   * Imports a split image (metadata and rootfs tarballs, each a path or a stream op builds as
   * it uploads); returns its fingerprint. `properties` are set on the image in the same
   * request (added to those of its metadata.yaml).
   */
  importImage(
    files: { metadata: string | Readable; rootfs: string | Readable },
    options?: IncusRequestOptions & { properties?: Record<string, string> },
  ): Promise<string>;
  // Declared files (plugins/lxc/files/): one file with its mode and owner. Incus's file API
  // has no bulk read: each file is one GET, which answers the bytes with X-Incus-* headers.
  /**
   * What is at `path` (its type, mode, uid and gid, and a regular file's or symlink's bytes),
   * or undefined when nothing is. A directory comes back without bytes, and so does anything
   * with `body: false` (a HEAD, which cannot tell a missing file from a missing instance).
   */
  statFile(
    instance: string,
    path: string,
    options?: IncusRequestOptions & { project?: string; body?: false },
  ): Promise<InstanceFile | undefined>;
  /**
   * Writes a regular file (`body`) or makes a directory (no body), with that mode and owner.
   * Incus (6.0) keeps the mode and owner of a file that exists: the caller deletes it first
   * when they must change. Refused with `not-found` when the parent directory is missing.
   */
  writeFile(
    instance: string,
    path: string,
    body: Buffer | undefined,
    meta: { mode: string; uid: number; gid: number },
    options?: IncusRequestOptions & { project?: string },
  ): Promise<void>;
  /** Deletes a file or an empty directory; whether there was one. */
  deleteFile(
    instance: string,
    path: string,
    options?: IncusRequestOptions & { project?: string },
  ): Promise<boolean>;
  // Backups (`rollback: snapshot`, plugins/lxc/backup.ts): streamed to and from a file, as a
  // container's disk can be large.
  /** Streams the tarball of `instance`'s finished backup `backup` into `file` (mode 0600). */
  downloadBackup(
    instance: string,
    backup: string,
    file: string,
    options?: IncusRequestOptions & { project?: string },
  ): Promise<void>;
  /** Creates instance `name` from a backup tarball at `file`: its disk, config and devices. */
  importBackup(
    file: string,
    name: string,
    options?: IncusRequestOptions & { project?: string },
  ): Promise<void>;
  /**
   * The ETag Incus gives the object at `path` (a hash of what a PUT writes: for an instance its
   * config with the volatile keys, devices, profiles...), or undefined when there is none.
   */
  etag(path: string, options?: IncusRequestOptions): Promise<string | undefined>;
  /** Drops idle connections (a CLI run ends without it; idle sockets do not hold node open). */
  close(): void;
}

/** What the files API says is at a path (IncusClient.statFile). */
export interface InstanceFile {
  /** `file`, `directory` or `symlink`. */
  type: string;
  /** Four octal digits, as Incus writes them (`0644`). */
  mode: string;
  uid: number;
  gid: number;
  /** A file's bytes (a symlink's target); none for a directory. */
  body?: Buffer;
}

interface Envelope {
  type?: "sync" | "async" | "error";
  error?: string;
  error_code?: number;
  metadata?: unknown;
}

/** One HTTP answer of Incus: status, the file type it names (files API), body. */
interface Answer {
  status: number;
  type: string | string[] | undefined;
  body: Buffer;
  /** All of them: the files API answers a file's mode and owner as X-Incus-* headers. */
  headers?: http.IncomingHttpHeaders;
}

interface Operation {
  id: string;
  status: string;
  err?: string;
  metadata?: unknown;
}

export function createIncusClient(
  where: string | IncusRemote,
  options: IncusClientOptions = {},
): IncusClient {
  const remote = typeof where === "string" ? undefined : where;
  const socketPath = typeof where === "string" ? where : where.urls.join(", ");
  // Fetched here, not imported at the top: importing node:http as ESM evaluates all of its
  // exports, undici included, at every op start, even for runs that never use Incus.
  const http = (
    remote === undefined
      ? process.getBuiltinModule("node:http")
      : process.getBuiltinModule("node:https")
  ) as typeof import("node:http");
  const agent =
    remote === undefined
      ? new http.Agent({ keepAlive: true, maxSockets: 32 })
      : pinnedAgent(remote);
  // A remote's URL: the first of its URLs that answers, found on first use (remoteBase).
  let base: Promise<URL> | undefined;
  const target = async (): Promise<http.RequestOptions> => {
    if (remote === undefined) return { socketPath };
    base ??= remoteBase(remote, agent, options.answerSeconds ?? incusTimeouts.read);
    const url = await base;
    return { host: bare(url.hostname), port: url.port || 8443 };
  };
  // Every call is scoped to the project (Incus's default project when none is given).
  const scoped = (path: string) => withProject(path, options.project);

  /**
   * One HTTP exchange, bounded by `answerMs`. A failure once the whole request has been
   * written, for a request that changes something, leaves its outcome unknown: Incus may have
   * acted on it (created the container) before the connection was lost.
   */
  const exchange = (
    method: string,
    path: string,
    what: string,
    write: (req: http.ClientRequest) => void,
    headers: http.OutgoingHttpHeaders,
    answerMs: number = (options.answerSeconds ??
      (isRead(method) ? incusTimeouts.read : incusTimeouts.change)) * 1000,
    retried = false,
  ): Promise<Answer> =>
    target().then((at) => exchangeAt(at, method, path, what, write, headers, answerMs, retried));

  const exchangeAt = (
    at: http.RequestOptions,
    method: string,
    path: string,
    what: string,
    write: (req: http.ClientRequest) => void,
    headers: http.OutgoingHttpHeaders,
    answerMs: number,
    retried: boolean,
  ): Promise<Answer> =>
    new Promise((resolve, reject) => {
      let sent = false;
      // An OpError is op's own (a body stream that refused its source), told as it is.
      const fail = (error: NodeJS.ErrnoException) =>
        reject(
          error instanceof OpError
            ? error
            : remote === undefined
              ? lost(socketPath, `${what} (${method} ${path})`, error, sent && !isRead(method))
              : lostRemote(
                  socketPath,
                  `${what} (${method} ${path})`,
                  error,
                  sent && !isRead(method),
                ),
        );
      const req = http.request({ ...at, agent, method, path: scoped(path), headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 500,
            type: res.headers["x-incus-type"],
            body: Buffer.concat(chunks),
            headers: res.headers,
          });
        });
      });
      const timer = setTimeout(() => {
        const error: NodeJS.ErrnoException = new Error(
          `Incus did not answer within ${answerMs / 1000} s`,
        );
        error.code = "OP_TIMEOUT";
        req.destroy(error);
      }, answerMs);
      req.on("finish", () => {
        sent = true;
      });
      req.on("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // Incus closes a kept-alive connection after a while idle; a read written to one it
        // has just closed is sent again, once, on a new connection (a change never is).
        const closedUnderUs = error.code === "EPIPE" || error.code === "ECONNRESET";
        if (req.reusedSocket && closedUnderUs && isRead(method) && !retried) {
          resolve(exchange(method, path, what, write, headers, answerMs, true));
          return;
        }
        fail(error);
      });
      write(req);
    });

  /** Incus's JSON answer to one exchange; an error answer becomes an OpError with its message. */
  const envelopeOf = (answer: Answer, what: string): Envelope => {
    const text = answer.body.toString("utf8");
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      throw new OpError(
        "command-failed",
        `${what}: Incus answered HTTP ${answer.status} with no JSON: ${text.slice(0, 200)}`,
      );
    }
    if (envelope.type === "error" || answer.status >= 400)
      throw refused(what, envelope.error || `HTTP ${answer.status}`);
    return envelope;
  };

  const send = async (...args: Parameters<typeof exchange>): Promise<Envelope> =>
    envelopeOf(await exchange(...args), args[2]);

  /**
   * Waits for a background operation in long-polls of up to `progress` seconds, telling
   * `onProgress` after each one that ends with the operation still running. The operation
   * exists in Incus: losing it now (connection, deadline) leaves the outcome unknown.
   */
  const waitFor = async (
    id: string,
    what: string,
    waitSeconds: number = options.operationSeconds ?? incusTimeouts.operation,
  ): Promise<unknown> => {
    const started = Date.now();
    const deadline = started + waitSeconds * 1000;
    for (;;) {
      const slice = Math.max(
        1,
        Math.min(incusTimeouts.progress, Math.ceil((deadline - Date.now()) / 1000)),
      );
      let envelope: Envelope;
      try {
        envelope = await send(
          "GET",
          `/1.0/operations/${encodeURIComponent(id)}/wait?timeout=${slice}`,
          what,
          (req) => req.end(),
          {},
          (slice + (options.answerSeconds ?? incusTimeouts.read)) * 1000,
        );
      } catch (error) {
        if (error instanceof OpError && error.code === "daemon-unavailable")
          throw outcomeUnknown(error, `${what}: Incus was running it (operation ${id})`);
        throw error;
      }
      const operation = envelope.metadata as Operation;
      if (operation.status === "Success") return operation.metadata;
      if (operation.status === "Failure" || operation.status === "Cancelled") {
        throw refused(what, operation.err || operation.status);
      }
      if (Date.now() >= deadline) {
        throw new OpError(
          "command-failed",
          `${what}: Incus did not finish within ${waitSeconds} s (operation ${id} is still ${operation.status})`,
          {
            hint: "it may still finish: the next op run reads the outcome; OP_INCUS_OPERATION_TIMEOUT=SECONDS waits longer",
            cause: new OutcomeUnknown(`operation ${id} still running`),
          },
        );
      }
      options.onProgress?.(
        `${what}: still waiting for Incus (${Math.round((Date.now() - started) / 1000)} s, operation ${operation.status})`,
      );
    }
  };

  const finish = async (
    envelope: Envelope,
    what: string,
    options: IncusRequestOptions,
  ): Promise<unknown> => {
    if (envelope.type !== "async" || options.detach) return envelope.metadata;
    const id = (envelope.metadata as Operation | undefined)?.id;
    if (id === undefined)
      throw new OpError("command-failed", `${what}: Incus started an operation without an id`);
    return waitFor(id, what, options.waitSeconds);
  };

  const statFile: IncusClient["statFile"] = async (instance, path, options = {}) => {
    const what = options.what ?? `reading ${path} in ${instance}`;
    const read = (method: "GET" | "HEAD") =>
      exchange(method, filesPath(instance, path, options.project), what, (req) => req.end(), {});
    const head = options.body === false;
    let answer = await read(head ? "HEAD" : "GET");
    if (head && answer.status === 404) return undefined;
    // A HEAD's error has no message: asked again as a GET, which says why.
    if (head && answer.status !== 200) answer = await read("GET");
    if (answer.status !== 200) {
      try {
        envelopeOf(answer, what);
      } catch (error) {
        // A missing file is "Not Found", and nothing can be under a file ("not a
        // directory"); a missing instance is named, and stays an error.
        const message = error instanceof OpError ? error.message : "";
        if (/: Not Found$/.test(message) || /not a directory/.test(message)) return undefined;
        throw error;
      }
    }
    const header = (name: string) => {
      const value = answer.headers?.[`x-incus-${name}`];
      return typeof value === "string" ? value : undefined;
    };
    const type = header("type") ?? "file";
    return {
      type,
      mode: header("mode") ?? "",
      uid: Number(header("uid") ?? Number.NaN),
      gid: Number(header("gid") ?? Number.NaN),
      ...(type === "directory" || head ? {} : { body: answer.body }),
    };
  };

  const writeFile: IncusClient["writeFile"] = async (instance, path, body, meta, options = {}) => {
    const what =
      options.what ??
      `${body === undefined ? "making directory" : "writing"} ${path} in ${instance}`;
    const headers = {
      "content-type": "application/octet-stream",
      "content-length": body?.length ?? 0,
      "x-incus-uid": String(meta.uid),
      "x-incus-gid": String(meta.gid),
      "x-incus-mode": meta.mode,
      "x-incus-type": body === undefined ? "directory" : "file",
      "x-incus-write": "overwrite",
    };
    const answer = await exchange(
      "POST",
      filesPath(instance, path, options.project),
      what,
      (req) => req.end(body),
      headers,
    );
    // No parent directory: Incus says "Not Found", or "not a directory" when one is a file.
    const noParent =
      answer.status === 404 ||
      (answer.status >= 400 && /not a directory/.test(answer.body.toString()));
    if (noParent) {
      throw new OpError("not-found", `${what}: Incus refused: no directory to hold it`, {
        hint: `a directory above ${path} is missing, or is not a directory, in ${instance}`,
      });
    }
    await finish(envelopeOf(answer, what), what, options);
  };

  return {
    socketPath,
    ...(remote === undefined ? {} : { remote }),
    ...(options.project === undefined ? {} : { project: options.project }),
    async websocket(path) {
      if (remote === undefined) return { url: `ws+unix:${socketPath}:${path}`, options: {} };
      const at = await target();
      const host = String(at.host).includes(":") ? `[${at.host}]` : at.host;
      return { url: `wss://${host}:${at.port}${path}`, options: { agent } };
    },
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
    // The older calls, in the words of statFile and writeFile.
    async pushFile(instance, path, content, options = {}) {
      const meta = { mode: "0644", uid: 0, gid: 0 };
      await writeFile(instance, path, Buffer.from(content), meta, {
        ...options,
        what: options.what ?? `writing ${path} in ${instance}`,
      });
    },
    async readFile(instance, path, options = {}) {
      const what = options.what ?? `reading ${path} in ${instance}`;
      const found = await statFile(instance, path, { ...options, what });
      if (found === undefined || found.type === "file") return found?.body;
      throw new OpError("command-failed", `${what}: ${path} is not a regular file`, {
        details: [`it is a ${found.type}`],
      });
    },
    async fileType(instance, path, options = {}) {
      const what = options.what ?? `looking for ${path} in ${instance}`;
      return (await statFile(instance, path, { ...options, what, body: false }))?.type;
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
          const pipeFile = (path: string | Readable, then: () => void) => {
            const stream = typeof path === "string" ? createReadStream(path) : path;
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
          ...(options.properties === undefined
            ? {}
            : { "x-incus-properties": new URLSearchParams(options.properties).toString() }),
        },
        incusTimeouts.upload * 1000,
      );
      const result = (await finish(envelope, what, options)) as { fingerprint?: string } | null;
      if (!result?.fingerprint)
        throw new OpError(
          "command-failed",
          `${what}: Incus did not report the image's fingerprint`,
        );
      return result.fingerprint;
    },
    statFile,
    writeFile,
    async deleteFile(instance, path, options = {}) {
      const what = options.what ?? `deleting ${path} in ${instance}`;
      const answer = await exchange(
        "DELETE",
        filesPath(instance, path, options.project),
        what,
        (req) => req.end(),
        {},
      );
      if (answer.status === 404) return false;
      await finish(envelopeOf(answer, what), what, options);
      return true;
    },
    async downloadBackup(instance, backup, file, options = {}) {
      const what = options.what ?? `downloading backup ${backup} of ${instance}`;
      const path = withProject(
        `/1.0/instances/${encodeURIComponent(instance)}/backups/${encodeURIComponent(backup)}/export`,
        options.project,
      );
      // Fetched here as node:http is (above): no import for runs that never download.
      const { pipeline } = process.getBuiltinModule("node:stream/promises");
      await new Promise<void>((resolve, reject) => {
        const fail = (error: NodeJS.ErrnoException) =>
          reject(error instanceof OpError ? error : lost(socketPath, what, error, false));
        const req = http.request(
          { socketPath, agent, method: "GET", path: scoped(path) },
          (res) => {
            if (res.statusCode === 200) {
              pipeline(res, createWriteStream(file, { mode: 0o600 })).then(resolve, fail);
              return;
            }
            // An error answer is Incus's JSON envelope, with its message.
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("error", fail);
            res.on("end", () => {
              const answer = { status: res.statusCode ?? 500, type: undefined };
              try {
                envelopeOf({ ...answer, body: Buffer.concat(chunks) }, what);
                fail(refused(what, `HTTP ${answer.status}`));
              } catch (error) {
                fail(error as NodeJS.ErrnoException);
              }
            });
          },
        );
        req.setTimeout(incusTimeouts.upload * 1000, () =>
          req.destroy(new Error(`Incus sent nothing for ${incusTimeouts.upload} s`)),
        );
        req.on("error", fail);
        req.end();
      });
    },
    async importBackup(file, name, options = {}) {
      const what = options.what ?? `importing ${name} from a backup`;
      const envelope = await send(
        "POST",
        withProject("/1.0/instances", options.project),
        what,
        (req) => {
          const stream = createReadStream(file);
          stream.on("error", (error) => req.destroy(error));
          stream.pipe(req);
        },
        {
          "content-type": "application/octet-stream",
          "content-length": statSync(file).size,
          "x-incus-name": name,
        },
        incusTimeouts.upload * 1000,
      );
      await finish(envelope, what, options);
    },
    async etag(path, options = {}) {
      const what = options.what ?? `reading the ETag of ${path}`;
      const answer = await exchange("GET", path, what, (req) => req.end(), {});
      if (answer.status === 404) return undefined;
      envelopeOf(answer, what);
      const etag = answer.headers?.etag;
      return typeof etag === "string" ? etag.replace(/^"|"$/g, "") : undefined;
    },
    close: () => agent.destroy(),
  };
}

/** A URL's host as a socket takes it: an IPv6 address without its brackets. */
function bare(hostname: string): string {
  return hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
}

/**
 * An HTTPS agent that presents the client certificate and hands a connection to a request
 * only once the server has shown the pinned certificate: nothing, not even a request line, is
 * sent to a server that is not the remote's. (http.Agent waits for createConnection's
 * callback when it returns no socket.)
 */
function pinnedAgent(remote: IncusRemote): http.Agent {
  const https = process.getBuiltinModule("node:https");
  const tls = process.getBuiltinModule("node:tls");
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 32,
    cert: remote.clientCert,
    key: remote.clientKey,
  });
  type Connect = (
    options: import("node:tls").ConnectionOptions,
    callback: (error: Error | null, socket?: import("node:net").Socket) => void,
  ) => undefined;
  (agent as unknown as { createConnection: Connect }).createConnection = (options, callback) => {
    // The chain is not checked (a self-signed certificate has none): the pin replaces it.
    const socket = tls.connect({ ...options, rejectUnauthorized: false });
    let settled = false;
    const settle = (error: Error | null) => {
      if (settled) return;
      settled = true;
      if (error === null) return callback(null, socket);
      socket.destroy();
      callback(error);
    };
    socket.once("secureConnect", () => {
      const seen = socket.getPeerCertificate().fingerprint256?.replaceAll(":", "").toLowerCase();
      if (seen === remote.fingerprint) return settle(null);
      const error: NodeJS.ErrnoException = new Error(
        `its certificate's SHA-256 fingerprint is ${seen ?? "(none)"}, not the pinned ${remote.fingerprint}`,
      );
      error.code = "OP_PIN";
      settle(error);
    });
    socket.once("error", (error) => settle(error));
    return undefined;
  };
  return agent;
}

/**
 * The first of a remote's URLs whose server shows the pinned certificate and trusts op's
 * client certificate (GET /1.0 says `auth: trusted`); an error naming each URL and why it
 * failed when none does.
 */
async function remoteBase(remote: IncusRemote, agent: http.Agent, seconds: number): Promise<URL> {
  const https = process.getBuiltinModule("node:https");
  const failures: string[] = [];
  for (const text of remote.urls) {
    const url = new URL(text);
    const why = await new Promise<string | undefined>((resolve) => {
      const req = https.request(
        {
          host: bare(url.hostname),
          port: url.port || 8443,
          path: "/1.0",
          agent,
          timeout: seconds * 1000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", (error) => resolve(error.message));
          res.on("end", () => {
            try {
              const auth = (
                JSON.parse(Buffer.concat(chunks).toString()) as Envelope & {
                  metadata?: { auth?: string };
                }
              ).metadata?.auth;
              resolve(
                auth === "trusted"
                  ? undefined
                  : `Incus answered but does not trust op's client certificate (auth: ${auth ?? "none"})`,
              );
            } catch {
              resolve(`HTTP ${res.statusCode ?? "?"} with no Incus JSON`);
            }
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${seconds} s`)));
      req.on("error", (error: NodeJS.ErrnoException) =>
        resolve(
          error.code === undefined || error.code === "OP_PIN"
            ? error.message
            : `${error.code}: ${error.message}`,
        ),
      );
      req.end();
    });
    if (why === undefined) return url;
    failures.push(`${text}: ${why}`);
  }
  throw new OpError("daemon-unavailable", "no URL of the remote Incus could be used", {
    details: failures,
    hint: "each line names a URL and why; `incus config trust add-certificate CERT` on the remote trusts op's certificate, and its server certificate's fingerprint is `incus info | grep fingerprint` there",
  });
}

/**
 * `path` scoped to `project`: unchanged when none is given, or when the path names a project
 * already (a call a plugin scopes itself, such as plugins/lxc/refs.ts inProject, made by a
 * client bound to a project, would otherwise carry two `project=` parameters).
 */
export function withProject(path: string, project: string | undefined): string {
  if (project === undefined) return path;
  const query = path.includes("?") ? path.slice(path.indexOf("?") + 1) : undefined;
  if (query !== undefined && new URLSearchParams(query).has("project")) return path;
  return `${path}${query === undefined ? "?" : "&"}project=${encodeURIComponent(project)}`;
}

/** The files API path of `path` in `instance`, scoped to `project` when one is named. */
export function filesPath(instance: string, path: string, project: string | undefined): string {
  return withProject(
    `/1.0/instances/${encodeURIComponent(instance)}/files?path=${encodeURIComponent(path)}`,
    project,
  );
}

export function refused(what: string, message: string): OpError {
  return new OpError("command-failed", `${what}: Incus refused: ${message}`, {
    hint: "the message is Incus's own; `incus info --show-log NAME` shows a container's start log",
  });
}

/** The request did not get an answer: why, and whether Incus may have acted on it. */
export function lost(
  socketPath: string,
  step: string,
  error: NodeJS.ErrnoException,
  maybeDone: boolean,
): OpError {
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
  }
  const why =
    error.code === "OP_TIMEOUT"
      ? `${error.message} to ${step} at ${socketPath}`
      : `lost the connection to Incus at ${socketPath} during ${step}: ${error.message}`;
  const failure = new OpError("daemon-unavailable", why, {
    hint:
      error.code === "OP_TIMEOUT"
        ? "is incusd overloaded or stuck? `incus info` tells; OP_INCUS_TIMEOUT=SECONDS waits longer"
        : hint,
  });
  return maybeDone ? outcomeUnknown(failure, "the request had been sent") : failure;
}

/**
 * A remote's request that got no answer: the daemon (or the way to it) went away after its
 * URL was chosen, or the pin refused a server that answered there since.
 */
function lostRemote(
  urls: string,
  step: string,
  error: NodeJS.ErrnoException,
  maybeDone: boolean,
): OpError {
  const failure = new OpError(
    "daemon-unavailable",
    error.code === "OP_TIMEOUT"
      ? `${error.message} to ${step} (remote Incus ${urls})`
      : `lost the connection to the remote Incus (${urls}) during ${step}: ${error.code ?? ""}${error.code === undefined ? "" : ": "}${error.message}`,
    {
      hint: "is the remote Incus up and reachable from here? Its URLs are tried in order at the start of a run; OP_INCUS_TIMEOUT=SECONDS waits longer",
    },
  );
  return maybeDone ? outcomeUnknown(failure, "the request had been sent") : failure;
}

/** The same error, marked: Incus may have done what was asked (see src/outcome.ts). */
function outcomeUnknown(error: OpError, why: string): OpError {
  return new OpError(error.code, `${error.message}; op cannot tell whether Incus did it (${why})`, {
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    cause: new OutcomeUnknown(why),
  });
}

/** A request that changes nothing: quick to answer, and safe to have lost. */
function isRead(method: string): boolean {
  return method === "GET" || method === "HEAD";
}
