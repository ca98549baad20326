/**
 * `--events[=FILE]` of plan and apply: the run's progress as newline-delimited JSON, one event a
 * line, each with format_version, its type and its time (docs/json-output.md, "Events"). Made
 * from the engine's run events (src/engine/run.ts RunEvent), so the stream and the text
 * progress cannot tell different stories.
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { messageOf } from "../engine/reconcile.js";
import type { RunEvent } from "../engine/run.js";
import type { OpError } from "../errors.js";
import { fileError } from "../files.js";
import type { Action } from "../plugin.js";
import { actionsJson, jsonDocument } from "./contract.js";
import { errorJson } from "./output.js";

/** `--events` alone: the events go to stdout (and nothing else of the command does). */
export const eventsToStdout = "-";

export type EventType =
  | "run_started"
  | "plan"
  | "action_started"
  | "action_finished"
  | "verify"
  | "run_finished";

export interface EventSink {
  emit(type: EventType, fields: object): void;
  close(): void;
}

/**
 * Opens where events go: stdout, or FILE (created 0600 or truncated; never through a symlink;
 * a FIFO is fine, for a reader that follows the run).
 */
export function openEvents(target: string, clock: () => Date = () => new Date()): EventSink {
  let fd = 1; // stdout
  if (target !== eventsToStdout) {
    try {
      fd = openSync(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (error) {
      throw fileError(error, target, "cannot open the --events file");
    }
  }
  return {
    emit(type, fields) {
      const line = `${JSON.stringify(jsonDocument({ type, time: clock().toISOString(), ...fields }))}\n`;
      // stdout through its stream: in order with anything else there, and a reader that goes
      // away (| head) is told to the stream's handler (src/cli/run.ts), not thrown mid-run.
      if (fd === 1) process.stdout.write(line);
      else writeSync(fd, line);
    },
    close() {
      if (fd !== 1) closeSync(fd);
    },
  };
}

/** An action as an event names it (its state objects are in the plan event). */
function ref(action: Action): object {
  const [json] = actionsJson([action]);
  return { action: json?.action, plugin: action.plugin, resource: action.resource, id: action.id };
}

/** The event of an engine run event, if it has one. */
export function emitRunEvent(sink: EventSink, event: RunEvent): void {
  switch (event.type) {
    case "planned":
      sink.emit("plan", { actions: actionsJson(event.actions) });
      return;
    case "started":
      sink.emit("action_started", ref(event.action));
      return;
    case "outcome": {
      const { outcome } = event;
      sink.emit("action_finished", {
        ...ref(event.action),
        status: outcome.status,
        ...(outcome.status === "failed" || outcome.status === "unknown"
          ? { error: messageOf(outcome.error) }
          : {}),
        ...(outcome.status === "held" ? { held: outcome.reason } : {}),
      });
      return;
    }
    case "verified":
      sink.emit("verify", {
        converged: event.remaining.length === 0,
        remaining: actionsJson(event.remaining),
      });
      return;
    case "pending":
    case "applying":
      return;
  }
}

/** The last event: the run's id, the ledger's head, whether the host converged, the exit code. */
export function runFinished(
  sink: EventSink,
  result: {
    run: string | null;
    ledgerHead: string | null;
    converged: boolean;
    exitCode: number;
    error?: OpError;
  },
): void {
  sink.emit("run_finished", {
    run: result.run,
    ledger_head: result.ledgerHead,
    converged: result.converged,
    exit_code: result.exitCode,
    ...(result.error === undefined ? {} : { error: errorJson(result.error) }),
  });
}
