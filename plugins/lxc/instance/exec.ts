/**
 * `op exec`: a command run in an Incus instance through its REST API. Incus starts the
 * command once op has connected the operation's websockets (one each for stdin, stdout and
 * stderr, or one pseudo terminal; and `control`, for signals and window sizes), streams the
 * output as binary messages ended by an empty text message (its "barrier"), and gives the
 * exit code as the finished operation's `return`.
 */
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";
import type { Ctx, ExecRequest, ExecResult } from "../../../src/plugin.js";
import { trace } from "../../../src/trace.js";
import { defaultProject } from "../refs.js";
import {
  connectExecSocket,
  type ExecSocket,
  loadWebSocket,
  receiveInto,
  sendFrom,
} from "./exec-socket.js";
import { instanceTarget, parseInstanceName } from "./target.js";

/** Exit code of a command killed at `--timeout`, as timeout(1) gives. */
export const timedOutExitCode = 124;

/** The operation Incus starts for an exec, as it answers the POST and the wait. */
interface ExecOperation {
  id: string;
  status?: string;
  err?: string;
  metadata?: { fds?: Record<string, string>; return?: number } | null;
}

/** Seconds of one long-poll for the operation once the command has ended (it ends at once). */
const waitSlice = 2;

export async function execInInstance(request: ExecRequest, ctx: Ctx): Promise<ExecResult> {
  const incus = ctx.incus;
  if (incus === undefined)
    throw new OpError("daemon-unavailable", "op exec needs Incus, and this run has no client");
  const webSocket = loadWebSocket();
  // Settled here too, so that a load failure while Incus is asked is not an unhandled one.
  webSocket.catch(() => {});
  const target = await instanceTarget(incus, parseInstanceName(request.instance), {
    any: request.any,
    running: true,
  });
  const shown =
    target.project === defaultProject ? target.name : `${target.project}/${target.name}`;
  const scope = `?project=${encodeURIComponent(target.project)}`;
  const terminal = request.terminal;
  const started = await incus.request<ExecOperation>(
    "POST",
    `/1.0/instances/${encodeURIComponent(target.name)}/exec${scope}`,
    {
      command: request.command,
      environment: request.environment,
      interactive: terminal !== undefined,
      "wait-for-websocket": true,
      "record-output": false,
      ...(terminal === undefined ? {} : { width: terminal.columns, height: terminal.rows }),
      ...(request.user === undefined ? {} : { user: request.user }),
      ...(request.group === undefined ? {} : { group: request.group }),
      ...(request.cwd === undefined ? {} : { cwd: request.cwd }),
    },
    { what: `running ${request.command[0]} in ${shown}`, detach: true },
  );
  trace("exec operation started");
  const fds = started.metadata?.fds ?? {};
  const secrets = terminal === undefined ? ["control", "0", "1", "2"] : ["control", "0"];
  const missing = secrets.filter((fd) => fds[fd] === undefined);
  if (missing.length > 0)
    throw new OpError(
      "command-failed",
      `running ${request.command[0]} in ${shown}: Incus gave no websocket for ${missing.join(", ")}`,
    );

  const sockets: ExecSocket[] = [];
  const cleanups: Array<() => void> = [];
  let timedOut = false;
  try {
    const connect = async (fd: string) => {
      const socket = await connectExecSocket(
        await webSocket,
        incus,
        started.id,
        fds[fd] as string,
        fd,
      );
      sockets.push(socket);
      return socket;
    };
    // Control first: in non-interactive mode Incus starts the command as soon as the three
    // data sockets are connected, and a command that ends at once would end the operation
    // before a control socket connected later.
    const control = await connect("control");
    const sendControl = (message: object) => control.sendText(JSON.stringify(message));
    const kill = (signal: number) => sendControl({ command: "signal", signal });
    const commandEnded = control.closed;
    const data = await Promise.all(secrets.slice(1).map(connect));
    trace("exec websockets connected");
    // A reader of op's output that goes away ends the command as a closed pipe would.
    const sigpipe = () => kill(13);
    const outputs =
      terminal === undefined
        ? [
            receiveInto(data[1] as ExecSocket, request.stdio.stdout, sigpipe),
            receiveInto(data[2] as ExecSocket, request.stdio.stderr, sigpipe),
          ]
        : [
            // Incus ends a terminal's operation only once its input has ended too: the
            // terminal's output has, so its input is ended here (Incus's CLI does the same).
            receiveInto(data[0] as ExecSocket, request.stdio.stdout, sigpipe).then(() =>
              (data[0] as ExecSocket).sendText(""),
            ),
          ];
    // A pseudo terminal has no end of input: ^D is a byte, sent as any other.
    cleanups.push(
      sendFrom(request.stdio.stdin, data[0] as ExecSocket, {
        barrierAtEnd: terminal === undefined,
      }),
    );
    if (terminal !== undefined)
      cleanups.push(
        terminal.onResize(({ columns, rows }) =>
          sendControl({
            command: "window-resize",
            args: { width: String(columns), height: String(rows) },
          }),
        ),
      );
    if (request.forwardSignals !== undefined) cleanups.push(request.forwardSignals(kill));
    if (request.timeoutSeconds !== undefined) {
      const timer = setTimeout(() => {
        timedOut = true;
        kill(9);
      }, request.timeoutSeconds * 1000);
      cleanups.push(() => clearTimeout(timer));
    }
    // Incus closes control when the command has ended and sends each output's barrier once
    // all of it is sent: the operation then finishes at once.
    await Promise.all([commandEnded, ...outputs]);
    trace("exec command ended");
    const finished = await finishedOperation(incus, started.id, shown);
    const code = finished.metadata?.return;
    if (finished.status !== "Success") {
      const message = finished.err || finished.status || "failed";
      if (typeof code !== "number" || code < 0)
        throw new OpError(
          "command-failed",
          `running ${request.command[0]} in ${shown}: Incus refused: ${message}`,
          { hint: "the message is Incus's own; incus info --show-log NAME shows the log" },
        );
      // Not found (127), not executable (126): the shell's codes, with Incus's words.
      request.stdio.stderr.write(`op exec: ${shown}: ${request.command[0]}: ${message}\n`);
      return { ...result(target.name, target.project, code, timedOut), message };
    }
    if (typeof code !== "number")
      throw new OpError(
        "command-failed",
        `running ${request.command[0]} in ${shown}: Incus did not report the exit code`,
      );
    return result(target.name, target.project, code, timedOut);
  } finally {
    for (const cleanup of cleanups) cleanup();
    // Normally closed by Incus already; after a failure of op's, closing control kills the
    // command rather than leaving it running unattended.
    for (const socket of sockets) socket.close();
  }
}

function result(instance: string, project: string, code: number, timedOut: boolean): ExecResult {
  return { instance, project, exitCode: timedOut ? timedOutExitCode : code, timedOut };
}

/**
 * The exec operation once finished. A failed one (command not found) answers the wait with
 * an error and no operation: it is read again for its `return` and message.
 */
async function finishedOperation(
  incus: IncusClient,
  id: string,
  shown: string,
): Promise<ExecOperation> {
  const path = `/1.0/operations/${encodeURIComponent(id)}`;
  const what = `waiting for the command in ${shown}`;
  for (;;) {
    let operation: ExecOperation;
    try {
      operation = await incus.request<ExecOperation>(
        "GET",
        `${path}/wait?timeout=${waitSlice}`,
        undefined,
        { what },
      );
    } catch (error) {
      if (!(error instanceof OpError) || error.code !== "command-failed") throw error;
      operation = await incus.request<ExecOperation>("GET", path, undefined, { what });
    }
    if (operation.status !== "Running" && operation.status !== "Pending") return operation;
  }
}
