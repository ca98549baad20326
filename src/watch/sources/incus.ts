/**
 * Hints from Incus's event stream (`/1.0/events?type=lifecycle,operation` over its unix
 * socket, a WebSocket). Incus drops a listener that stops reading, and meanwhile holds up its
 * own event fan-out: the socket is always read and each event handled at once (a hint is a
 * few strings; the watch merges them), never paused. The stream errors when the socket closes.
 */
import { Observable } from "rxjs";
import { OpError } from "../../errors.js";
import type { Hint, HintSource } from "../hint.js";
import { lxcPlugin, type SourceIds } from "./ids.js";

const source = "incus";

/** Lifecycle actions on an instance that change what op reads of it (not snapshots, logs, files…). */
const instanceActions = new Set([
  "created",
  "deleted",
  "started",
  "stopped",
  "shutdown",
  "restarted",
  "renamed",
  "updated",
  "paused",
  "resumed",
  "restored",
]);
/** Other kinds the lxc plugin manages; their ids are not only a name, so the hint is plugin-wide. */
const otherKinds = /^(?:profile|network|storage-volume|project|image|image-alias)-[a-z-]+$/;
const instanceName = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;
const projectName = /^[A-Za-z0-9_.-]{1,63}$/;
/**
 * The largest event read: Incus's are a few kilobytes. A bigger one closes the stream (the
 * watch resubscribes and resyncs) rather than growing op's memory on a broken daemon.
 */
const maxEventBytes = 4 * 1024 * 1024;

/** The hints one event of Incus's stream gives (none for one op cannot act on). */
export function incusEventHints(text: string, ids: SourceIds): Hint[] {
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    return [];
  }
  if (!isObject(event) || !isObject(event.metadata)) return [];
  const project = typeof event.project === "string" && event.project ? event.project : "default";
  if (!projectName.test(project)) return [];
  const { metadata } = event;
  const container = (name: string, what: string): Hint[] =>
    instanceName.test(name)
      ? [{ plugin: lxcPlugin, id: ids.container(project, name), source, what }]
      : [];

  if (event.type === "lifecycle" && typeof metadata.action === "string") {
    const action = metadata.action;
    const instance = /^instance-([a-z]+)$/.exec(action);
    if (instance?.[1] && instanceActions.has(instance[1])) {
      const name = instanceOf(metadata.source);
      if (name === undefined) return [];
      const hints = container(name, `instance ${name} ${instance[1]}`);
      const context = isObject(metadata.context) ? metadata.context : {};
      // A rename's old name may be the one the file declares.
      if (typeof context.old_name === "string")
        hints.push(
          ...container(context.old_name, `instance ${context.old_name} renamed to ${name}`),
        );
      return hints;
    }
    return otherKinds.test(action) ? [{ plugin: lxcPlugin, source, what: action }] : [];
  }
  if (event.type === "operation") {
    // Progress reports (Pending, Running) say nothing new; an operation's end may be a failure
    // that no lifecycle event reports.
    const code = metadata.status_code;
    if (typeof code !== "number" || code < 200) return [];
    const resources = isObject(metadata.resources) ? metadata.resources : {};
    const instances = Array.isArray(resources.instances) ? resources.instances : [];
    const status = typeof metadata.status === "string" ? metadata.status : String(code);
    const description =
      typeof metadata.description === "string" ? metadata.description : "operation";
    return instances.flatMap((path) => {
      const name = instanceOf(path);
      return name === undefined ? [] : container(name, `${description}: ${name} ${status}`);
    });
  }
  return [];
}

/** NAME of `/1.0/instances/NAME` (with `?project=…` or not); a snapshot's path is no instance. */
function instanceOf(path: unknown): string | undefined {
  if (typeof path !== "string") return undefined;
  const match = /^\/1\.0\/instances\/([^/?]+)(?:\?.*)?$/.exec(path);
  return match?.[1];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The Incus source, on the API socket `socketPath` (settings.incus.socket). */
export function incusSource(ids: SourceIds, socketPath: string): HintSource {
  return {
    name: source,
    plugins: [lxcPlugin],
    hints(): Observable<Hint> {
      return new Observable<Hint>((subscriber) => {
        let closed = false;
        const lost = (why: string) =>
          new OpError("daemon-unavailable", `Incus's event stream at ${socketPath} ${why}`, {
            hint: "start the Incus daemon, or point OP_INCUS_SOCKET at its socket",
          });
        // Loaded on subscribe, not imported: `ws` is not part of the start-up snapshot.
        import("ws")
          .then(({ WebSocket }) => {
            if (closed) return;
            // Without all-projects Incus sends only the default project's events.
            const socket = new WebSocket(
              `ws+unix:${socketPath}:/1.0/events?type=lifecycle,operation&all-projects=true`,
              { maxPayload: maxEventBytes },
            );
            socket.on("message", (data) => {
              for (const hint of incusEventHints(data.toString(), ids)) subscriber.next(hint);
            });
            socket.on("error", (error: NodeJS.ErrnoException) => {
              if (closed) return;
              const why =
                error.code === "ENOENT" || error.code === "ECONNREFUSED"
                  ? "is not there (Incus is not running)"
                  : `failed: ${error.message}`;
              subscriber.error(lost(why));
            });
            socket.on("close", () => {
              if (!closed) subscriber.error(lost("closed"));
            });
            teardown = () => socket.terminate();
          })
          .catch((error: unknown) => subscriber.error(error));
        let teardown = () => {};
        return () => {
          closed = true;
          teardown();
        };
      });
    },
  };
}
