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
}

type Kind = "absolute-path" | "seconds" | "text";

/** One variable: its name, what it sets, its default (as the README's table shows it). */
export interface SettingVariable {
  name: string;
  kind: Kind;
  meaning: string;
  /** The default, or undefined when unset means "not given" (the consumer's own default). */
  fallback?: string;
}

/** Every `OP_*` default op reads, in the order the README's environment table lists them. */
export const settingVariables = [
  {
    name: "OP_LEDGER",
    kind: "absolute-path",
    meaning: "ledger directory (`--ledger` overrides)",
    fallback: "/var/lib/op/ledger",
  },
  {
    name: "OP_LEDGER_KEY",
    kind: "absolute-path",
    meaning: "ledger signing key; `cache.key` is kept beside it (`--ledger-key` overrides)",
    fallback: "/etc/op/ledger.key",
  },
  {
    name: "OP_LOCK",
    kind: "absolute-path",
    meaning: "the host lock of `op apply`",
    fallback: "/run/op/lock",
  },
  {
    name: "OP_CACHE_DIR",
    kind: "absolute-path",
    meaning: "derived, disposable data (nftables' normalised rules, the code cache)",
    fallback: "/var/cache/op",
  },
  {
    name: "OP_COMMAND_TIMEOUT",
    kind: "seconds",
    meaning: "how long a command op starts may run",
    fallback: "120",
  },
  {
    name: "OP_INCUS_SOCKET",
    kind: "absolute-path",
    meaning: "Incus's API socket",
    fallback: "/var/lib/incus/unix.socket",
  },
  {
    name: "OP_INCUS_TIMEOUT",
    kind: "seconds",
    meaning: "how long to wait for one Incus answer (default: 10 s for a read, 30 s for a change)",
  },
  {
    name: "OP_INCUS_OPERATION_TIMEOUT",
    kind: "seconds",
    meaning: "how long an Incus background operation may take (default 300 s)",
  },
  {
    name: "OP_OVS_RUNDIR",
    kind: "absolute-path",
    meaning: "where Open vSwitch keeps `db.sock` and `ovs-vswitchd.pid`",
    fallback: "/var/run/openvswitch",
  },
  {
    name: "OP_OVSDB_TIMEOUT",
    kind: "seconds",
    meaning:
      "how long to wait for OVSDB to connect or answer one request (default 5 s for a read, 10 s otherwise, 35 s for ovs-vswitchd to apply a change)",
  },
  {
    name: "OP_DEFAULT_IMAGE",
    kind: "text",
    meaning: "image of a container when neither it nor its section's `default_image` names one",
    fallback: "images:debian/12",
  },
] as const satisfies readonly SettingVariable[];

type VariableName = (typeof settingVariables)[number]["name"];

/**
 * The settings `env` gives, checked. An empty variable counts as unset (as a path it would
 * mean the current directory). Throws a usage error naming every variable that is wrong.
 */
export function loadSettings(env: Environment): Settings {
  const problems: string[] = [];
  const read = (name: VariableName): string | number | undefined => {
    const spec: SettingVariable = settingVariables.find(
      (variable) => variable.name === name,
    ) as SettingVariable;
    const text = env[name] || undefined;
    if (text === undefined)
      return spec.kind === "seconds" && spec.fallback !== undefined
        ? Number(spec.fallback)
        : spec.fallback;
    const problem = problemOf(spec.kind, text);
    if (problem === undefined) return spec.kind === "seconds" ? Number(text) : text;
    problems.push(`${name}=${JSON.stringify(text)}: ${problem}`);
    return undefined;
  };
  const path = (name: VariableName) => read(name) as string;
  const seconds = (name: VariableName) => read(name) as number | undefined;
  const answerSeconds = seconds("OP_INCUS_TIMEOUT");
  const operationSeconds = seconds("OP_INCUS_OPERATION_TIMEOUT");
  const ovsTimeout = seconds("OP_OVSDB_TIMEOUT");
  const defaultImage = env.OP_DEFAULT_IMAGE || undefined;
  const settings: Settings = {
    ledgerDir: path("OP_LEDGER"),
    keyFile: path("OP_LEDGER_KEY"),
    lockFile: path("OP_LOCK"),
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
    // Unset stays unset: the lxc plugin's own fallback applies after the file's default_image.
    ...(defaultImage === undefined ? {} : { defaultImage: read("OP_DEFAULT_IMAGE") as string }),
  };
  if (problems.length > 0) {
    throw new OpError(
      "usage",
      problems.length === 1
        ? `environment variable ${problems[0]}`
        : `${problems.length} environment variables are wrong`,
      {
        ...(problems.length === 1 ? {} : { details: problems }),
        hint: "fix or unset the variable (README.md, section Environment, lists them all)",
      },
    );
  }
  return settings;
}

/** The defaults alone: what op uses when no variable is set (tests and the warm-up use it). */
export const defaultSettings: Settings = loadSettings({});

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
