/**
 * An instance's files through Incus's files API, streamed: a file is sent piece by piece over
 * the instance's SFTP session (src/incus-sftp.ts) and read back as a Readable, so `op file push/pull`
 * of a file of any size holds only a few chunks in memory (IncusClient's pushFile/readFile
 * buffer whole files; they suit small ones).
 *
 * Incus answers a GET with a file's bytes, a symlink's target or a directory's JSON listing,
 * naming which in X-Incus-type, with the entry's mode and owner in X-Incus-mode/uid/gid; a POST
 * creates a file, directory or symlink from the same headers.
 */
import type http from "node:http";
import { pipeline, type Readable, Transform } from "node:stream";
import v8 from "node:v8";
import vm from "node:vm";
import { OpError } from "./errors.js";
import { filesPath, type IncusClient, incusTimeouts, lost, refused } from "./incus.js";
import { type FileReader, openSftp, type SftpSession } from "./incus-sftp.js";

export type FileKind = "file" | "directory" | "symlink";

/** What Incus says of an entry: its kind, permission bits and owner (in the instance's ids). */
export interface FileStat {
  type: FileKind;
  mode: number;
  uid: number;
  gid: number;
}

/** A path inside an instance of a project. */
export interface InstancePathRef {
  instance: string;
  project: string;
  path: string;
}

/** An entry as read: a file's bytes (to be consumed), a symlink's target, a directory's names. */
export type FileEntry =
  | { type: "file"; stat: FileStat; body: Readable }
  | { type: "symlink"; stat: FileStat; target: string }
  | { type: "directory"; stat: FileStat; entries: string[] };

/** An entry to create. `mode` is ignored for a symlink (Incus makes it 0777). */
export type NewEntry =
  | { type: "file"; mode: number; uid: number; gid: number; read: FileReader }
  | { type: "directory"; mode: number; uid: number; gid: number }
  | { type: "symlink"; uid: number; gid: number; target: string };

export interface IncusFiles {
  /** What is at the path, or undefined when nothing is. */
  stat(ref: InstancePathRef): Promise<FileStat | undefined>;
  /** The entry at the path, or undefined when nothing is. A file's body must be consumed. */
  read(ref: InstancePathRef): Promise<FileEntry | undefined>;
  /**
   * Creates the entry; gives the bytes of a file's content sent. A file that exists is
   * truncated and written, and takes the mode and owner given; a directory that exists is kept
   * as it is; a symlink over anything is refused. A file is written through a symlink at its
   * path: remove that first.
   */
  write(ref: InstancePathRef, entry: NewEntry): Promise<number>;
  /** Removes a file, a symlink or an empty directory. */
  remove(ref: InstancePathRef): Promise<void>;
  close(): void;
}

/**
 * Every chunk of a transfer is a new Buffer, and V8 collects dead ones only after tens of MB
 * of them (its external-memory trigger): a 200 MB copy grew op by 40 MB of garbage. A young-
 * generation collection every few MB (a small heap: well under a millisecond each) keeps it
 * bounded. `gc` is reached through a context made while --expose-gc is on, then turned off.
 */
const scavengeEvery = 4 << 20;
let collect: ((options: { type: "minor" }) => void) | undefined;
function scavenger(): (bytes: number) => void {
  if (collect === undefined) {
    v8.setFlagsFromString("--expose-gc");
    collect = vm.runInNewContext("gc") as (options: { type: "minor" }) => void;
    v8.setFlagsFromString("--no-expose-gc");
  }
  const gc = collect;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < scavengeEvery) return;
    since = 0;
    gc({ type: "minor" });
  };
}

interface Envelope {
  type?: string;
  error?: string;
  metadata?: unknown;
}

/**
 * The files API of the daemon `incus` talks to. Its own connections: a transfer holds one for
 * as long as it streams, and the run's other requests should not queue behind it.
 */
export function createIncusFiles(
  incus: IncusClient,
  options: { idleSeconds?: number } = {},
): IncusFiles {
  // Its streams and SFTP sessions are made on the unix socket (their own agent, not the client's).
  if (incus.remote !== undefined)
    throw new OpError("usage", "op file works on the local Incus only (its unix socket)", {
      hint: "a remote Incus's files are reached with `incus file push/pull REMOTE:NAME/PATH`",
    });
  const http = process.getBuiltinModule("node:http");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  // A transfer may take minutes; what is wrong is Incus going quiet, not a long copy.
  const idleMs = (options.idleSeconds ?? incusTimeouts.change) * 1000;
  // Made by the first read: only a pull moves chunks through the heap (a push reuses buffers).
  let scavenge: ((bytes: number) => void) | undefined;
  const instanceOf = (ref: InstancePathRef) =>
    `${ref.project === "default" ? "" : `${ref.project}/`}${ref.instance}`;
  const shown = (ref: InstancePathRef) => `${instanceOf(ref)}:${ref.path}`;
  // One SFTP session per instance, opened by its first file and kept for the next ones.
  const sessions = new Map<string, Promise<SftpSession>>();
  const sftp = (ref: InstancePathRef): Promise<SftpSession> => {
    const key = `${ref.project}/${ref.instance}`;
    let session = sessions.get(key);
    if (session === undefined) {
      session = openSftp(incus, ref.instance, ref.project, `writing into ${instanceOf(ref)}`);
      sessions.set(key, session);
    }
    return session;
  };

  /** One request; resolves with the answer as soon as its headers arrive. */
  const send = (
    method: string,
    ref: InstancePathRef,
    what: string,
    headers: http.OutgoingHttpHeaders,
    body?: string,
    retried = false,
  ): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const path = filesPath(ref.instance, ref.path, ref.project);
      const isRead = method === "GET" || method === "HEAD";
      let sent = false;
      const req = http.request({ socketPath: incus.socketPath, agent, method, path, headers });
      req.setTimeout(idleMs, () => {
        const error: NodeJS.ErrnoException = new Error(
          `Incus did not answer within ${idleMs / 1000} s`,
        );
        error.code = "OP_TIMEOUT";
        req.destroy(error);
      });
      req.on("finish", () => {
        sent = true;
      });
      req.on("response", resolve);
      req.on("error", (error: NodeJS.ErrnoException) => {
        // A kept-alive connection Incus has just closed: a read is sent again, once.
        const closedUnderUs = error.code === "EPIPE" || error.code === "ECONNRESET";
        if (req.reusedSocket && closedUnderUs && isRead && !retried) {
          resolve(send(method, ref, what, headers, body, true));
          return;
        }
        reject(lost(incus.socketPath, `${what} (${method} ${path})`, error, sent && !isRead));
      });
      req.end(body);
    });

  /** The JSON answer's metadata; an error answer becomes Incus's own message. */
  const envelope = async (res: http.IncomingMessage, what: string): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let parsed: Envelope;
    try {
      parsed = JSON.parse(text) as Envelope;
    } catch {
      throw new OpError(
        "command-failed",
        `${what}: Incus answered HTTP ${res.statusCode} with no JSON: ${text.slice(0, 200)}`,
      );
    }
    if (parsed.type === "error" || (res.statusCode ?? 500) >= 400)
      throw refused(what, parsed.error || `HTTP ${res.statusCode}`);
    return parsed.metadata;
  };

  const statOf = (res: http.IncomingMessage, what: string): FileStat => {
    const header = (name: string) => {
      const value = res.headers[`x-incus-${name}`];
      return typeof value === "string" ? value : "";
    };
    const type = header("type");
    if (type !== "file" && type !== "directory" && type !== "symlink")
      throw new OpError("command-failed", `${what}: Incus named an unknown file type "${type}"`);
    return {
      type,
      mode: Number.parseInt(header("mode"), 8),
      uid: Number(header("uid")),
      gid: Number(header("gid")),
    };
  };

  return {
    async stat(ref) {
      const what = `looking for ${shown(ref)}`;
      const res = await send("HEAD", ref, what, {});
      res.resume();
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw refused(what, `HTTP ${res.statusCode}`);
      return statOf(res, what);
    },
    async read(ref) {
      const what = `reading ${shown(ref)}`;
      const res = await send("GET", ref, what, {});
      if (res.statusCode === 404) {
        res.resume();
        return undefined;
      }
      if (res.statusCode !== 200) {
        await envelope(res, what); // throws with Incus's message
        throw refused(what, `HTTP ${res.statusCode}`);
      }
      const stat = statOf(res, what);
      switch (stat.type) {
        case "file": {
          scavenge ??= scavenger();
          const collect = scavenge;
          const body = new Transform({
            transform(chunk: Buffer, _encoding, done) {
              collect(chunk.length);
              done(null, chunk);
            },
          });
          // An error of either side ends both; the reader sees it on `body`.
          pipeline(res, body, () => {});
          return { type: "file", stat, body };
        }
        case "symlink": {
          const chunks: Buffer[] = [];
          for await (const chunk of res) chunks.push(chunk as Buffer);
          return { type: "symlink", stat, target: Buffer.concat(chunks).toString("utf8") };
        }
        case "directory":
          return { type: "directory", stat, entries: (await envelope(res, what)) as string[] };
      }
    },
    async write(ref, entry) {
      if (entry.type === "file") {
        const { mode, uid, gid, read } = entry;
        return (await sftp(ref)).writeFile(ref.path, read, { mode, uid, gid });
      }
      const what = `writing ${shown(ref)}`;
      const headers: http.OutgoingHttpHeaders = {
        "content-type": "application/octet-stream",
        "x-incus-type": entry.type,
        "x-incus-uid": String(entry.uid),
        "x-incus-gid": String(entry.gid),
        ...(entry.type === "directory"
          ? { "x-incus-mode": `0${entry.mode.toString(8).padStart(3, "0")}` }
          : {}),
      };
      const body = entry.type === "symlink" ? entry.target : undefined;
      await envelope(await send("POST", ref, what, headers, body), what);
      return 0;
    },
    async remove(ref) {
      const what = `removing ${shown(ref)}`;
      await envelope(await send("DELETE", ref, what, {}), what);
    },
    close: () => {
      agent.destroy();
      for (const session of sessions.values())
        session.then(
          (open) => open.close(),
          () => {},
        );
    },
  };
}
