/**
 * `op file push LOCAL... NAME:/PATH` and `op file pull NAME:/PATH... LOCAL`: copies files in
 * and out of an instance through the plugin that has instances (lxc). Not a change of state:
 * no lock, no plan, nothing in the ledger.
 */
import { createCtx } from "../context.js";
import { OpError } from "../errors.js";
import type { FileCopyReport, InstancePath, InstanceWork } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import { exitCodes, type GlobalOptions } from "./commands.js";
import { printDocument } from "./contract.js";
import { signalExitCode } from "./interrupt.js";

export interface FileOptions extends GlobalOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  recursive?: boolean;
  createDirs?: boolean;
  any?: boolean;
}

/**
 * `NAME:/PATH` split at its first colon (a name cannot hold one; a path may). The plugin checks
 * both halves.
 */
export function splitInstancePath(text: string, role: string): InstancePath {
  const colon = text.indexOf(":");
  if (colon < 0)
    throw new OpError("usage", `${JSON.stringify(text)} is not NAME:/PATH (${role})`, {
      hint: "name the instance, a colon and the absolute path inside it: ct1:/root/file",
    });
  return { instance: text.slice(0, colon), path: text.slice(colon + 1) };
}

async function instanceWork(registry: PluginRegistry): Promise<InstanceWork> {
  const plugin = (await registry.load()).find((candidate) => candidate.instances !== undefined);
  if (plugin?.instances === undefined)
    throw new OpError("usage", "no plugin of this op works inside instances");
  return plugin.instances;
}

/** Whether there are enough arguments: at least one source and the destination. */
function sourcesAndTarget(args: string[], command: string): [string[], string] {
  const target = args.at(-1);
  if (args.length < 2 || target === undefined)
    throw new OpError("usage", `op file ${command} needs at least one source and a destination`);
  return [args.slice(0, -1), target];
}

function report(copied: FileCopyReport, verb: string, where: string, json: boolean): void {
  if (json) {
    printDocument(copied);
    return;
  }
  const parts = [
    `${copied.files} file${copied.files === 1 ? "" : "s"} (${copied.bytes} bytes)`,
    copied.directories > 0
      ? `${copied.directories} director${copied.directories === 1 ? "y" : "ies"}`
      : "",
    copied.symlinks > 0 ? `${copied.symlinks} symlink${copied.symlinks === 1 ? "" : "s"}` : "",
  ].filter(Boolean);
  process.stdout.write(`${verb} ${parts.join(", ")} ${where}\n`);
}

function ctxOf(options: FileOptions) {
  return createCtx({ settings: options.settings, verbose: options.verbose ?? false });
}

export async function filePushCommand(
  args: string[],
  options: FileOptions,
  registry: PluginRegistry,
): Promise<number> {
  const [sources, last] = sourcesAndTarget(args, "push");
  const target = splitInstancePath(last, "the destination of a push");
  const work = await instanceWork(registry);
  const ctx = ctxOf(options);
  const copied = await work.push(
    {
      sources,
      target,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
      recursive: options.recursive ?? false,
      createDirs: options.createDirs ?? false,
      any: options.any ?? false,
    },
    ctx,
  );
  report(copied, "pushed", `to ${last}`, options.json ?? false);
  return exitCodes.ok;
}

export async function filePullCommand(
  args: string[],
  options: FileOptions,
  registry: PluginRegistry,
): Promise<number> {
  const [sources, target] = sourcesAndTarget(args, "pull");
  const from = sources.map((source) => splitInstancePath(source, "a source of a pull"));
  const work = await instanceWork(registry);
  // A signal stops the pull where it is, so the file being written is removed, not left behind.
  const stop = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals): void => {
    if (received !== undefined) process.exit(signalExitCode(received));
    received = name;
    stop.abort(new OpError("usage", `${name}: pull stopped`));
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) process.on(name, onSignal);
  try {
    const copied = await work.pull(
      {
        sources: from,
        target,
        recursive: options.recursive ?? false,
        any: options.any ?? false,
        signal: stop.signal,
      },
      ctxOf(options),
    );
    report(copied, "pulled", `to ${target}`, options.json ?? false);
    return exitCodes.ok;
  } catch (error) {
    if (received === undefined) throw error;
    process.stderr.write(
      `op: ${received}: pull stopped; what was pulled before stays, the file being written was removed\n`,
    );
    return signalExitCode(received);
  } finally {
    for (const name of signals) process.off(name, onSignal);
  }
}
