/**
 * Every environment default op has, read in this one place into a typed, checked `Settings`.
 * The CLI reads the environment when a command runs (never when a module loads: the startup
 * snapshot is built on another machine) and hands the result down; plugins see it as
 * `ctx.settings`, and a plugin's pure `check` gets what it needs of it as a parameter.
 * A bad value is a usage error (exit 64) naming the variable, before anything is read or changed.
 */
import { isAbsolute } from "node:path";
import { OpError } from "../errors.js";

/** The environment as op reads it: variable name → text. */
export type Environment = Readonly<Record<string, string | undefined>>;

export interface Settings {
  /** The ledger's directory. */
  ledgerDir: string;
  /** The ledger's signing key (its public half beside it, `.pub`). */
  keyFile: string;
  /** The host lock `op apply` holds. */
  lockFile: string;
  /** The status document `op apply` updates and `op status` reads (src/status/). */
  statusFile: string;
  /** Where derived, disposable data is kept (nftables' normalised rules, V8's code cache). */
  cacheDir: string;
  /** Seconds a command op starts may run unless its caller says otherwise. */
  commandTimeoutSeconds: number;
  incus: {
    /** Incus's API socket. */
    socket: string;
    /** Seconds to wait for one answer; unset: the client's own defaults (src/incus.ts). */
    answerSeconds?: number;
    /** Seconds a background operation may take; unset: the client's own default. */
    operationSeconds?: number;
  };
  ovs: {
    /** Where ovs-vswitchd keeps db.sock and its pid file. */
    runDir: string;
    /** When set, replaces every wait for an OVSDB connection or answer. */
    timeoutSeconds?: number;
  };
  /** The image of a container whose section and file name none. */
  defaultImage?: string;
  /** `TERM`, not op's own: passed on to a command `op exec -t` runs in a terminal. */
  terminalType?: string;
}

type Kind = "absolute-path" | "seconds" | "text";

/**
 * Every `OP_*` default op reads, its kind and its default (none: the consumer's own applies).
 * README.md's environment table describes each; a test keeps the two in step.
 */
export const settingVariables = {
  OP_LEDGER: { kind: "absolute-path", fallback: "/var/lib/op/ledger" },
  OP_LEDGER_KEY: { kind: "absolute-path", fallback: "/etc/op/ledger.key" },
  OP_LOCK: { kind: "absolute-path", fallback: "/run/op/lock" },
  OP_STATUS: { kind: "absolute-path", fallback: "/var/lib/op/status.json" },
  OP_CACHE_DIR: { kind: "absolute-path", fallback: "/var/cache/op" },
  OP_COMMAND_TIMEOUT: { kind: "seconds", fallback: "120" },
  OP_INCUS_SOCKET: { kind: "absolute-path", fallback: "/var/lib/incus/unix.socket" },
  OP_INCUS_TIMEOUT: { kind: "seconds" },
  OP_INCUS_OPERATION_TIMEOUT: { kind: "seconds" },
  OP_OVS_RUNDIR: { kind: "absolute-path", fallback: "/var/run/openvswitch" },
  OP_OVSDB_TIMEOUT: { kind: "seconds" },
  OP_DEFAULT_IMAGE: { kind: "text" },
} as const satisfies Record<string, { kind: Kind; fallback?: string }>;

type VariableName = keyof typeof settingVariables;

/**
 * The settings `env` gives, checked. An empty variable counts as unset (as a path it would
 * mean the current directory). Throws one usage error naming every variable that is wrong.
 */
export function loadSettings(env: Environment): Settings {
  const problems: string[] = [];
  /** The variable's text if set and right, else its default (undefined when it has none). */
  const read = (name: VariableName): string | undefined => {
    const spec: { kind: Kind; fallback?: string } = settingVariables[name];
    const text = env[name] || undefined;
    if (text === undefined) return spec.fallback;
    const problem = problemOf(spec.kind, text);
    if (problem === undefined) return text;
    problems.push(`${name}=${shown(text)}: ${problem}`);
    return spec.fallback;
  };
  // Read in the table's order, so that problems are named in that order.
  const values = new Map(
    (Object.keys(settingVariables) as VariableName[]).map((name) => [name, read(name)]),
  );
  const path = (name: VariableName) => values.get(name) as string;
  const seconds = (name: VariableName) => {
    const text = values.get(name);
    return text === undefined ? undefined : Number(text);
  };
  const answerSeconds = seconds("OP_INCUS_TIMEOUT");
  const operationSeconds = seconds("OP_INCUS_OPERATION_TIMEOUT");
  const ovsTimeout = seconds("OP_OVSDB_TIMEOUT");
  // Unset stays unset: the lxc plugin's own fallback applies after the file's default_image.
  const defaultImage = values.get("OP_DEFAULT_IMAGE");
  const settings: Settings = {
    ledgerDir: path("OP_LEDGER"),
    keyFile: path("OP_LEDGER_KEY"),
    lockFile: path("OP_LOCK"),
    statusFile: path("OP_STATUS"),
    cacheDir: path("OP_CACHE_DIR"),
    commandTimeoutSeconds: seconds("OP_COMMAND_TIMEOUT") as number,
    incus: {
      socket: path("OP_INCUS_SOCKET"),
      ...(answerSeconds === undefined ? {} : { answerSeconds }),
      ...(operationSeconds === undefined ? {} : { operationSeconds }),
    },
    ovs: {
      runDir: path("OP_OVS_RUNDIR"),
      ...(ovsTimeout === undefined ? {} : { timeoutSeconds: ovsTimeout }),
    },
    ...(defaultImage === undefined ? {} : { defaultImage }),
    ...(env.TERM ? { terminalType: env.TERM } : {}),
  };
  if (problems.length > 0) {
    throw new OpError(
      "usage",
      problems.length === 1
        ? `environment variable ${problems[0]}`
        : `${problems.length} environment variables are wrong`,
      {
        ...(problems.length === 1 ? {} : { details: problems }),
        hint: "fix or unset it (README.md, section Environment, says what each one takes)",
      },
    );
  }
  return settings;
}

/** The defaults alone: what op uses when no variable is set (tests and the warm-up use it). */
export const defaultSettings: Settings = loadSettings({});

/** A value as the user typed it, quoted when it has spaces or characters a terminal hides. */
function shown(text: string): string {
  return /^[\x21-\x7e]+$/.test(text) ? text : JSON.stringify(text);
}

function problemOf(kind: Kind, text: string): string | undefined {
  switch (kind) {
    case "absolute-path":
      if (!isAbsolute(text)) return "must be an absolute path";
      if (text.includes("\0")) return "must not contain a NUL character";
      return undefined;
    case "seconds": {
      const seconds = Number(text.trim());
      return text.trim() === "" || !Number.isFinite(seconds) || seconds <= 0
        ? "must be a number of seconds greater than 0"
        : undefined;
    }
    case "text":
      // A value with a control character is a mistake (a pasted newline), not an image name.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
      return /[\u0000-\u001f\u007f]/.test(text) ? "must not contain control characters" : undefined;
  }
}

/**
 * `OP_TRACE=1`: whether op prints a line per phase (src/trace.ts). Read at every call, never
 * kept: the startup snapshot's warm-up traces at build time, and a kept value would be the
 * one of the machine that built it. Only `1` turns it on.
 */
export function tracing(): boolean {
  return process.env.OP_TRACE === "1";
}

/** The environment of every command op starts: op's own, in the C locale (its output is parsed). */
export function commandEnvironment(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: "C" };
}
