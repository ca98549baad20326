import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { defaultSettings, loadSettings, type Settings, settingVariables } from "./settings.js";

/** Where each variable lands in Settings, with a good value for it. */
const good: Record<keyof typeof settingVariables, [string, (s: Settings) => unknown, unknown]> = {
  OP_LEDGER: ["/srv/op/ledger", (s) => s.ledgerDir, "/srv/op/ledger"],
  OP_LEDGER_KEY: ["/srv/keys/l.key", (s) => s.keyFile, "/srv/keys/l.key"],
  OP_LOCK: ["/tmp/op.lock", (s) => s.lockFile, "/tmp/op.lock"],
  OP_STATUS: ["/srv/op/status.json", (s) => s.statusFile, "/srv/op/status.json"],
  OP_CACHE_DIR: ["/srv/cache", (s) => s.cacheDir, "/srv/cache"],
  OP_COMMAND_TIMEOUT: ["2.5", (s) => s.commandTimeoutSeconds, 2.5],
  OP_INCUS_SOCKET: ["/run/incus.sock", (s) => s.incus.socket, "/run/incus.sock"],
  OP_INCUS_TIMEOUT: ["7", (s) => s.incus.answerSeconds, 7],
  OP_INCUS_OPERATION_TIMEOUT: ["900", (s) => s.incus.operationSeconds, 900],
  OP_OVS_RUNDIR: ["/run/ovs-test", (s) => s.ovs.runDir, "/run/ovs-test"],
  OP_OVSDB_TIMEOUT: ["0.2", (s) => s.ovs.timeoutSeconds, 0.2],
  OP_DEFAULT_IMAGE: ["local:busybox", (s) => s.defaultImage, "local:busybox"],
};

function usageError(env: Record<string, string>): OpError {
  try {
    loadSettings(env);
  } catch (error) {
    if (error instanceof OpError) return error;
    throw error;
  }
  throw new Error(`no error for ${JSON.stringify(env)}`);
}

describe("loadSettings", () => {
  it("gives op's defaults when nothing is set, and leaves optional ones unset", () => {
    expect(loadSettings({})).toEqual({
      ledgerDir: "/var/lib/op/ledger",
      keyFile: "/etc/op/ledger.key",
      lockFile: "/run/op/lock",
      statusFile: "/var/lib/op/status.json",
      cacheDir: "/var/cache/op",
      commandTimeoutSeconds: 120,
      incus: { socket: "/var/lib/incus/unix.socket" },
      ovs: { runDir: "/var/run/openvswitch" },
    });
    expect(defaultSettings).toEqual(loadSettings({}));
  });

  it("reads every variable into its own field", () => {
    expect(Object.keys(good).sort()).toEqual(Object.keys(settingVariables).sort());
    for (const [name, [value, field, expected]] of Object.entries(good)) {
      const settings = loadSettings({ [name]: value });
      expect(field(settings), name).toEqual(expected);
      // Only that field moved.
      expect(field(defaultSettings), name).not.toEqual(expected);
    }
  });

  it("takes an empty variable as unset", () => {
    const empty = Object.fromEntries(Object.keys(settingVariables).map((name) => [name, ""]));
    expect(loadSettings(empty)).toEqual(defaultSettings);
  });

  it("refuses a relative path, naming the variable (usage error, exit 64)", () => {
    for (const name of Object.keys(settingVariables)) {
      if (settingVariables[name as keyof typeof settingVariables].kind !== "absolute-path")
        continue;
      const error = usageError({ [name]: "ledger/here" });
      expect(error.code).toBe("usage");
      expect(error.exitCode).toBe(64);
      expect(error.message).toBe(
        `environment variable ${name}=ledger/here: must be an absolute path`,
      );
    }
  });

  it("refuses a timeout that is not a number of seconds above 0", () => {
    const seconds = Object.keys(settingVariables).filter(
      (name) => settingVariables[name as keyof typeof settingVariables].kind === "seconds",
    );
    expect(seconds).toHaveLength(4);
    for (const name of seconds) {
      for (const bad of ["abc", "0", "-3", "Infinity", "10s", " "]) {
        const error = usageError({ [name]: bad });
        expect(error.exitCode, `${name}=${bad}`).toBe(64);
        expect(error.message).toBe(
          `environment variable ${name}=${bad === " " ? '" "' : bad}: must be a number of seconds greater than 0`,
        );
      }
    }
  });

  it("refuses an image name with a control character", () => {
    expect(usageError({ OP_DEFAULT_IMAGE: "busybox\n" }).message).toContain(
      'OP_DEFAULT_IMAGE="busybox\\n": must not contain control characters',
    );
  });

  it("names every wrong variable at once", () => {
    const error = usageError({ OP_INCUS_TIMEOUT: "abc", OP_LEDGER: "rel", OP_LOCK: "/ok" });
    expect(error.message).toBe("2 environment variables are wrong");
    expect(error.details).toEqual([
      "OP_LEDGER=rel: must be an absolute path",
      "OP_INCUS_TIMEOUT=abc: must be a number of seconds greater than 0",
    ]);
  });
});

describe("README's environment table", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Environment"));
  const table = section.slice(0, section.indexOf("\n\n", section.indexOf("| variable |")));
  const rows = [...table.matchAll(/^\| `(OP_[A-Z_]+)` \|/gm)].map((match) => match[1]);

  it("describes every variable op reads, and only those (with the launcher's and OP_TRACE)", () => {
    expect(rows.sort()).toEqual(
      [...Object.keys(settingVariables), "OP_TRACE", "OP_NO_SNAPSHOT", "OP_ROOT"].sort(),
    );
  });
});

describe("where the environment is read", () => {
  const root = join(import.meta.dirname, "..", "..");
  const sources = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
      .filter(
        (entry) => entry.isFile() && /\.ts$/.test(entry.name) && !/\.test\.ts$/.test(entry.name),
      )
      .map((entry) => relative(root, join(entry.parentPath, entry.name)));

  it("is only this module and the CLI's entry, in src/ and plugins/", () => {
    const readers = [...sources("src"), ...sources("plugins")].filter((file) =>
      /process\.env\b/.test(readFileSync(join(root, file), "utf8")),
    );
    expect(readers.sort()).toEqual(["src/cli/main.ts", "src/cli/run.ts", "src/host/settings.ts"]);
  });
});
