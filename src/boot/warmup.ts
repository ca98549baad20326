/**
 * Work the startup snapshot does once at build time so that each run does not: V8 compiles a
 * function the first time it runs, and a function first run while the snapshot is built is
 * stored compiled, instead of compiling the schemas' validators and the plugins' prepare and
 * diff at every start.
 *
 * Plugins are run only through the registry and the plugin contract, on the fixtures their
 * manifests name (a state section, and a live state or a recorded host the plugin's query
 * reads: src/registry.ts WarmUpFixture). Everything here is pure: no process,
 * file, socket or environment variable of the build machine ends up in the snapshot.
 */
import { planState } from "../engine/reconcile.js";
import type { OvsHost, OvsRows } from "../host/ovs.js";
import { defaultSettings } from "../host/settings.js";
import type { Action, Ctx } from "../plugin.js";
import type { PluginRegistry, RecordedHost } from "../registry.js";
import { validateState } from "../state/validate.js";

function refuse(what: string): never {
  throw new Error(`bug: the snapshot's warm-up tried to ${what}`);
}

/**
 * A ctx whose every side effect is refused: the warm-up must not have any. With a recorded
 * host, its commands and Open vSwitch answer from the recording instead.
 */
function warmUpCtx(recorded?: RecordedHost): Ctx {
  const ovs = recorded === undefined ? undefined : recordedOvs(recorded.ovs);
  return {
    exec: {
      netns: undefined,
      run: async (program, args, options) => {
        const answer = recorded?.commands.find(
          (command) =>
            command.program === program &&
            command.args.join("\0") === args.join("\0") &&
            command.input === options?.input,
        );
        if (answer === undefined) return refuse(`run ${program} ${args.join(" ")} (not recorded)`);
        return { stdout: answer.stdout, stderr: "", exitCode: 0 };
      },
    },
    clock: () => refuse("read the clock"),
    log: { debug: () => {}, info: () => {}, warn: () => {} },
    cacheDir: undefined,
    options: { allowUplink: true },
    settings: defaultSettings,
    host: {
      get sys(): never {
        return refuse("read the host's files");
      },
      get ovs(): OvsHost {
        return ovs ?? refuse("use Open vSwitch");
      },
      get net(): never {
        return refuse("connect to a service");
      },
    },
  };
}

/** Open vSwitch answering reads from recorded rows (none: out of reach); changes are refused. */
function recordedOvs(rows: OvsRows | undefined): OvsHost {
  return {
    runDir: "",
    reach: () => (rows ? { here: true } : { here: false, reason: "not in the recording" }),
    present: () => rows !== undefined,
    select: async () => rows ?? refuse("read Open vSwitch, which the recording lacks"),
    topology: () => refuse("read Open vSwitch's topology"),
    change: () => refuse("change Open vSwitch"),
    version: () => refuse("ask Open vSwitch's version"),
  };
}

/**
 * Plans each fixture of each plugin that has some (file check, the plugin's check, prepare,
 * diff and plan) and returns the actions planned, all fixtures together.
 */
export async function warmUp(registry: PluginRegistry): Promise<Action[]> {
  const ctx = warmUpCtx();
  const actions: Action[] = [];
  for (const manifest of registry.manifests) {
    if (manifest.warmUp === undefined) continue;
    const plugins = await registry.load([manifest.name]);
    for (const fixture of await manifest.warmUp()) {
      const { section } = fixture;
      const file = { version: 1, plugins: { [manifest.name]: section } };
      const document = validateState(file, registry.manifests, "warm-up.json");
      const started = new Map<string, Promise<unknown>>();
      for (const plugin of plugins) {
        plugin.check(section, `/plugins/${manifest.name}`, defaultSettings);
        const live =
          "live" in fixture ? Promise.resolve(fixture.live) : plugin.query(warmUpCtx(fixture.host));
        started.set(plugin.name, live);
      }
      const planned = await planState(document, plugins, ctx, started);
      actions.push(...planned.actions);
    }
  }
  return actions;
}
