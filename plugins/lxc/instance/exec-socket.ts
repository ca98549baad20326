/**
 * One websocket of an Incus exec operation (`ws` over the API's unix socket), and the two ways
 * data crosses it: output received into a stream, input sent from one. Both keep
 * back-pressure: the socket is paused while the output stream is full, the input stream while
 * a chunk is being sent, so neither side is ever held in memory whole.
 */
import type { WebSocket } from "ws";
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";

export interface ExecSocket {
  /** Settles when the socket has closed, whoever closed it. */
  readonly closed: Promise<void>;
  sendText(text: string): void;
  close(): void;
  /** The connection itself, for receiveInto and sendFrom. */
  readonly socket: WebSocket;
}

/**
 * `ws`, loaded on first use, not imported: it is no part of a start that runs no command, and
 * cannot be in the start-up snapshot (its node:http and node:tls are not snapshotable). Called
 * early, its loading overlaps Incus's answers.
 */
export function loadWebSocket(): Promise<typeof WebSocket> {
  return import("ws").then((module) => module.WebSocket);
}

/** Opens the websocket of one of the operation's `fd`s (0, 1, 2, control) with its secret. */
export async function connectExecSocket(
  WebSocket: typeof import("ws").WebSocket,
  incus: IncusClient,
  operation: string,
  secret: string,
  fd: string,
): Promise<ExecSocket> {
  // Reached as the client reaches Incus: its unix socket, or a remote's pinned TLS agent.
  const { url, options } = await incus.websocket(
    `/1.0/operations/${encodeURIComponent(operation)}/websocket?secret=${encodeURIComponent(secret)}`,
  );
  const socketPath = incus.socketPath;
  const socket = new WebSocket(url, options);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", (error: Error) =>
      reject(
        new OpError(
          "daemon-unavailable",
          `could not connect the command's ${fd === "control" ? "control" : `fd ${fd}`} websocket at ${socketPath}: ${error.message}`,
          { hint: "is incusd running? incus info tells" },
        ),
      ),
    );
  });
  // After the open, an error (the daemon gone) only closes the socket; the operation's wait
  // reports what happened.
  socket.on("error", () => {});
  return {
    closed,
    socket,
    sendText(text) {
      if (socket.readyState === socket.OPEN) socket.send(text, { binary: false });
    },
    close() {
      if (socket.readyState !== socket.CLOSED) socket.terminate();
    },
  };
}

/**
 * Writes what arrives on `from` into `into` as it comes; settles at Incus's barrier (an empty
 * text message: this output is complete) or when the socket closes. When `into` fails (its
 * reader went away: `op exec … | head -1`), `readerGone` is told once and the rest is read and
 * dropped, so that the socket still reaches its end.
 */
export function receiveInto(
  from: ExecSocket,
  into: NodeJS.WritableStream,
  readerGone: () => void,
): Promise<void> {
  const { socket } = from;
  return new Promise<void>((resolve) => {
    let paused = false;
    let gone = false;
    const resume = () => {
      if (!paused) return;
      paused = false;
      socket.resume();
    };
    const onError = () => {
      into.removeListener("drain", resume);
      if (gone) return;
      gone = true;
      resume();
      readerGone();
    };
    into.on("error", onError);
    const done = () => {
      into.removeListener("error", onError);
      into.removeListener("drain", resume);
      resolve();
    };
    socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!isBinary) {
        done();
        return;
      }
      if (gone || (into as { destroyed?: boolean }).destroyed === true) {
        onError();
        return;
      }
      const chunk = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      if (!into.write(chunk) && !paused) {
        paused = true;
        socket.pause();
        into.once("drain", resume);
      }
    });
    void from.closed.then(done);
  });
}

/**
 * Sends what `from` gives over `to`, one chunk at a time; at its end, with `barrierAtEnd`, an
 * empty text message, which Incus takes as end of input (it closes the command's stdin).
 * Returns the function that stops reading (the command ended before its input did).
 */
export function sendFrom(
  from: NodeJS.ReadableStream,
  to: ExecSocket,
  options: { barrierAtEnd: boolean },
): () => void {
  const { socket } = to;
  let stopped = false;
  const onData = (chunk: Buffer | string) => {
    if (stopped || socket.readyState !== socket.OPEN) return;
    from.pause();
    socket.send(chunk, { binary: true }, () => {
      if (!stopped) from.resume();
    });
  };
  const onEnd = () => {
    if (options.barrierAtEnd) to.sendText("");
  };
  // A stdin that cannot be read (closed, a directory) is input that has ended.
  const onError = onEnd;
  from.on("data", onData);
  from.once("end", onEnd);
  from.once("error", onError);
  return () => {
    stopped = true;
    from.removeListener("data", onData);
    from.removeListener("end", onEnd);
    from.removeListener("error", onError);
    from.pause();
  };
}
