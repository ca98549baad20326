/**
 * A container's `wait`: after op creates or starts it, the apply of that action returns only
 * when the container is ready as the file asks: running, with an address, cloud-init finished,
 * sshd answering. The engine runs the actions of a wave concurrently, so several containers
 * wait at once. Each step polls Incus (state, files) or the container's sshd until the
 * deadline, and a timeout names the container, the step and what was last seen.
 */
import { OpError } from "../../src/errors.js";
import type { Net } from "../../src/host/net.js";
import type { IncusClient } from "../../src/incus.js";
import { inProject } from "./refs.js";

export const readySteps = ["running", "ip", "cloud-init", "ssh"] as const;
export type ReadyStep = (typeof readySteps)[number];

export interface ReadySpec {
  for: ReadyStep[];
  /** Seconds for all the steps together. */
  timeout: number;
}

/** What a finished wait saw: the address `ip` or `ssh` found (for the inventory). */
export interface Readiness {
  address?: string;
}

export interface ReadyEnv {
  incus: IncusClient;
  net: Pick<Net, "banner">;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** Where cloud-init writes its outcome once it has finished (errors included). */
export const cloudInitResult = "/run/cloud-init/result.json";
const cloudInitProgram = "/usr/bin/cloud-init";
const sshdProgram = "/usr/sbin/sshd";
const sshPort = 22;

/** The steps to take, in order: a later step needs the earlier ones (ssh needs an address). */
export function stepsFor(spec: ReadySpec): ReadyStep[] {
  const wanted = new Set(spec.for);
  if (wanted.has("ssh")) wanted.add("ip");
  if (wanted.size > 0) wanted.add("running");
  return readySteps.filter((step) => wanted.has(step));
}

interface InstanceState {
  status: string;
  network?: Record<
    string,
    { addresses?: { family: string; address: string; scope: string }[] } | undefined
  > | null;
}

/**
 * The container's first global IPv4 address (eth0 first), else its first global IPv6 one:
 * the address the inventory and the ssh step use.
 */
export function addressOf(state: InstanceState): string | undefined {
  const nics = Object.entries(state.network ?? {})
    .filter(([name]) => name !== "lo")
    .sort(([a], [b]) => (a === "eth0" ? -1 : b === "eth0" ? 1 : a < b ? -1 : 1));
  for (const family of ["inet", "inet6"]) {
    for (const [, nic] of nics) {
      const found = nic?.addresses?.find((a) => a.family === family && a.scope === "global");
      if (found !== undefined) return found.address;
    }
  }
  return undefined;
}

/** cloud-init's own outcome: undefined while it runs, else its errors (none: it succeeded). */
export function cloudInitErrors(resultJson: string): string[] {
  const result = JSON.parse(resultJson) as { v1?: { errors?: unknown[] } };
  return (result.v1?.errors ?? []).map((error) => String(error));
}

export async function waitReady(
  container: { name: string; project: string },
  spec: ReadySpec,
  env: ReadyEnv,
): Promise<Readiness> {
  const deadline = env.now() + spec.timeout * 1000;
  const who = `container ${container.name}`;
  const statePath = inProject(
    `/1.0/instances/${encodeURIComponent(container.name)}/state`,
    container.project,
  );
  const scope = { project: container.project };
  const readFile = (path: string) => env.incus.readFile(container.name, path, scope);
  const has = async (path: string) =>
    (await env.incus.fileType(container.name, path, scope)) !== undefined;
  const readiness: Readiness = {};

  /** Polls `check` (undefined: not yet) until it answers or the deadline passes. */
  const poll = async <T>(
    step: ReadyStep,
    check: () => Promise<{ done: T } | { waiting: string }>,
  ): Promise<T> => {
    let delay = 250;
    for (;;) {
      const answer = await check();
      if ("done" in answer) return answer.done;
      if (env.now() >= deadline) {
        throw new OpError(
          "command-failed",
          `${who} was not ready within ${spec.timeout} s: still waiting for ${step} (${answer.waiting})`,
          {
            hint: `raise wait.timeout, or look inside: incus info --show-log ${container.name}; incus exec ${container.name} -- cloud-init status --long`,
          },
        );
      }
      await env.sleep(Math.min(delay, Math.max(0, deadline - env.now())));
      delay = Math.min(delay * 2, 2000);
    }
  };

  const state = () =>
    env.incus.request<InstanceState>("GET", statePath, undefined, {
      what: `reading the state of ${container.name}`,
    });

  for (const step of stepsFor(spec)) {
    switch (step) {
      case "running":
        await poll(step, async () => {
          const { status } = await state();
          return status === "Running" ? { done: true } : { waiting: `it is ${status}` };
        });
        break;
      case "ip":
        readiness.address = await poll(step, async () => {
          const address = addressOf(await state());
          return address === undefined
            ? { waiting: "it has no global address yet" }
            : { done: address };
        });
        break;
      case "cloud-init": {
        if (!(await has(cloudInitProgram)))
          throw missing(who, `cloud-init (${cloudInitProgram})`, step);
        const errors = await poll<string[]>(step, async () => {
          const result = await readFile(cloudInitResult);
          return result === undefined
            ? { waiting: `${cloudInitResult} is not written yet` }
            : { done: cloudInitErrors(result.toString("utf8")) };
        });
        if (errors.length > 0) {
          throw new OpError("command-failed", `${who}: cloud-init finished with errors`, {
            details: errors,
            hint: `incus exec ${container.name} -- cat /var/log/cloud-init.log`,
          });
        }
        break;
      }
      case "ssh": {
        if (!(await has(sshdProgram))) throw missing(who, `SSH server (${sshdProgram})`, step);
        const address = readiness.address as string;
        await poll(step, async () => {
          const answer = await env.net.banner(address, sshPort, 2000);
          if ("error" in answer) return { waiting: `${address}:${sshPort}: ${answer.error}` };
          return answer.line.startsWith("SSH-")
            ? { done: true }
            : {
                waiting: `${address}:${sshPort} answers ${JSON.stringify(answer.line.slice(0, 40))}, not SSH`,
              };
        });
        break;
      }
    }
  }
  return readiness;
}

function missing(who: string, what: string, step: ReadyStep): OpError {
  return new OpError(
    "invalid-state",
    `${who}: its image has no ${what}, so \`wait\` for ${step} would never end`,
    {
      hint: "use an image with it (scripts/setup-cloud-image.sh builds a Debian one), or leave the step out of `wait.for`",
    },
  );
}
