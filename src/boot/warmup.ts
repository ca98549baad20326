/**
 * Work the startup snapshot does once at build time so that each run does not: V8 compiles a
 * function the first time it runs, and a function first run while the snapshot is built is
 * stored compiled, instead of compiling the schemas' validators and the plugins' prepare and
 * diff at every start.
 *
 * Plugins are run only through the registry and the plugin contract, on the fixtures their
 * manifests name (a state section and a live state). Everything here is pure: no process,
 * file, socket or environment variable of the build machine ends up in the snapshot.
 */
import { planState } from "../engine/reconcile.js";
import { defaultSettings } from "../host/settings.js";
import type { Action, Ctx } from "../plugin.js";
import type { PluginRegistry } from "../registry.js";
import { validateState } from "../state/validate.js";

/** A ctx whose every side effect is refused: the warm-up must not have any. */
function pureCtx(): Ctx {
  const refuse = (what: string): never => {
    throw new Error(`bug: the snapshot's warm-up tried to ${what}`);
  };
  return {
    exec: { netns: undefined, run: (command) => refuse(`run ${command}`) },
    clock: () => refuse("read the clock"),
    log: { debug: () => {}, info: () => {}, warn: () => {} },
    cacheDir: undefined,
    options: { allowUplink: true },
    settings: defaultSettings,
    host: {
      get sys(): never {
        return refuse("read the host's files");
      },
      get ovs(): never {
        return refuse("use Open vSwitch");
      },
    },
  };
}

/**
 * Plans each fixture of each plugin that has some (file check, the plugin's check, prepare,
 * diff and plan) and returns the actions planned, all fixtures together.
 */
export async function warmUp(registry: PluginRegistry): Promise<Action[]> {
  const ctx = pureCtx();
  const actions: Action[] = [];
  for (const manifest of registry.manifests) {
    if (manifest.warmUp === undefined) continue;
    const plugins = await registry.load([manifest.name]);
    for (const { section, live } of await manifest.warmUp()) {
      const file = { version: 1, plugins: { [manifest.name]: section } };
      const document = validateState(file, registry.manifests, "warm-up.json");
      for (const plugin of plugins)
        plugin.check?.(section, `/plugins/${manifest.name}`, defaultSettings);
      const started = new Map([[manifest.name, Promise.resolve(live)]]);
      const planned = await planState(document, plugins, ctx, started);
      actions.push(...planned.actions);
    }
  }
  return actions;
}
