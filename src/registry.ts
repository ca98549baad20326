/**
 * What op knows of a plugin before loading it (its manifest), and the registry built from the
 * manifests. src/ never names a plugin: the list lives in plugins/registry.ts, and the entry
 * (bin/op.ts) hands the registry to the CLI. Each plugin is loaded only when a run needs it: a
 * file with only a network section never loads the Incus client or the nftables code.
 */
import type { Runner } from "./exec.js";
import * as validators from "./generated/validators.js";
import type { OvsRows } from "./host/ovs.js";
import type { Ctx, Plugin } from "./plugin.js";

/** One thing `op doctor` checks on the host, and how to fix it when it is missing. */
export interface DoctorCheck {
  name: string;
  neededFor: string;
  /** A required check that fails makes `op doctor` exit 1. */
  required: boolean;
  /**
   * What was found (a version, a path); throws what is wrong. It looks at the host only
   * through `host` (the same layer the plugins use), and creates and changes nothing.
   */
  probe(host: DoctorHost): Promise<string>;
  hint: string;
}

/** What a doctor check may look at: commands, the host layer, the settings (as ctx has them). */
export type DoctorHost = Pick<Ctx, "exec" | "host" | "settings">;

/** One command's answer, recorded from a real host. */
export interface RecordedCommand {
  program: string;
  args: string[];
  input?: string;
  stdout: string;
}

/** What a host answered to a plugin's `query`, recorded: commands, and Open vSwitch's rows. */
export interface RecordedHost {
  commands: RecordedCommand[];
  /** The rows `ctx.host.ovs.select` returned; without them, Open vSwitch is out of reach. */
  ovs?: OvsRows;
}

/**
 * A state section and the host the plugin plans against, purely: either its live state as
 * `query` returns it, or a recorded host that the plugin's own `query` then reads (so the
 * snapshot also holds the query's parsing compiled).
 */
export type WarmUpFixture =
  | { section: unknown; live: unknown }
  | { section: unknown; host: RecordedHost };

export interface PluginManifest {
  readonly name: string;
  /** Other names accepted for the plugin's section in a state file (e.g. `net`). */
  readonly aliases?: readonly string[];
  /** Create order: lower first; deletes run in the reverse order. */
  readonly order: number;
  /**
   * The schema of the plugin's section: `schemas/<schema>.schema.json`, compiled by
   * scripts/gen.mjs. It is named after the plugin (the state file's check finds it by name).
   */
  readonly schema: string;
  /** What `op doctor` checks for this plugin (a check shared with another plugin, once). */
  readonly doctor?: readonly DoctorCheck[];
  /**
   * Fixtures the start-up snapshot plans from at build time (src/boot/warmup.ts), so that the
   * plugin's functions are stored compiled. Pure data: the warm-up runs no process.
   */
  readonly warmUp?: () => Promise<readonly WarmUpFixture[]>;
  load(): Promise<Plugin>;
}

export interface PluginRegistry {
  /** In create order. */
  readonly manifests: readonly PluginManifest[];
  /** The manifest a section key or a `--plugin` value names (a name or an alias). */
  named(name: string): PluginManifest | undefined;
  /** The named plugins (all when no names are given), loaded in parallel, in create order. */
  load(names?: Iterable<string>): Promise<Plugin[]>;
}

/** Whether scripts/gen.mjs compiled a schema of that name (schemas/<name>.schema.json). */
export function schemaCompiled(schema: string): boolean {
  const key = `validate_${schema.replace(/[^A-Za-z0-9]/g, "_")}`;
  return typeof (validators as Record<string, unknown>)[key] === "function";
}

/**
 * The registry of these manifests. A manifest without a compiled schema, a schema not named
 * after its plugin, or a name or alias given twice is a bug of the plugin list: it throws.
 */
export function createRegistry(
  manifests: readonly PluginManifest[],
  hasSchema: (schema: string) => boolean = schemaCompiled,
): PluginRegistry {
  const seen = new Set<string>();
  for (const manifest of manifests) {
    for (const name of [manifest.name, ...(manifest.aliases ?? [])]) {
      if (seen.has(name)) throw new Error(`bug: plugin name "${name}" is registered twice`);
      seen.add(name);
    }
    if (manifest.schema !== manifest.name) {
      throw new Error(
        `bug: plugin ${manifest.name}'s schema is "${manifest.schema}"; it must be named after the plugin`,
      );
    }
    if (!hasSchema(manifest.schema)) {
      throw new Error(
        `bug: plugin ${manifest.name} has no compiled schema: add schemas/${manifest.schema}.schema.json and run node scripts/gen.mjs`,
      );
    }
  }
  const ordered = [...manifests].sort((a, b) => a.order - b.order);
  const named = (name: string) =>
    ordered.find((entry) => entry.name === name || entry.aliases?.includes(name));
  return {
    manifests: ordered,
    named,
    load: (names) => {
      const wanted = names === undefined ? undefined : new Set(names);
      return Promise.all(
        ordered
          .filter((entry) => wanted === undefined || wanted.has(entry.name))
          .map((entry) => entry.load()),
      );
    },
  };
}

/** The first line of a tool's version output: a doctor probe of a command op runs. */
export async function toolVersion(
  runner: Runner,
  command: string,
  args: readonly string[] = ["--version"],
): Promise<string> {
  return (await runner.run(command, [...args])).stdout.split("\n")[0]?.trim() ?? "";
}
