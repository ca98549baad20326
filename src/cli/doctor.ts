/**
 * `op doctor`: what this host lacks for each part of op, with how to get it. op's own needs
 * are listed here; each plugin's come from its manifest (src/registry.ts).
 */
import { access, constants, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { resolvePaths } from "../context.js";
import { createRunner } from "../exec.js";
import { createHost } from "../host/index.js";
import type { Settings } from "../host/settings.js";
import {
  type DoctorCheck,
  type DoctorHost,
  type PluginRegistry,
  toolVersion,
} from "../registry.js";
import { printDocument } from "./contract.js";
import { renderReport } from "./output.js";

export async function doctorCommand(
  options: {
    settings: Settings;
    json?: boolean;
    ledger?: string;
    ledgerKey?: string;
  },
  registry: PluginRegistry,
): Promise<number> {
  const { settings } = options;
  const host: DoctorHost = {
    exec: createRunner({ timeoutSeconds: settings.commandTimeoutSeconds }),
    host: createHost(settings),
    settings,
  };
  const runner = host.exec;
  const where = resolvePaths(settings, {
    ...(options.ledger === undefined ? {} : { ledgerDir: options.ledger }),
    ...(options.ledgerKey === undefined ? {} : { keyFile: options.ledgerKey }),
  });

  const own: DoctorCheck[] = [
    {
      name: "node >= 22",
      neededFor: "op",
      required: true,
      probe: async () => {
        if (Number(process.versions.node.split(".")[0]) < 22)
          throw new Error(`node ${process.versions.node}`);
        return `node ${process.versions.node}`;
      },
      hint: "run op through scripts/op, which uses the Node the project installs",
    },
    {
      name: "root",
      neededFor: "changing the host",
      required: true,
      probe: async () => {
        if (process.getuid?.() !== 0) throw new Error(`uid ${process.getuid?.()}`);
        return "uid 0";
      },
      hint: "run op as root (netlink, nftables and container changes need it)",
    },
    {
      name: "flock",
      neededFor: "op apply (the host lock)",
      required: true,
      probe: () => toolVersion(runner, "flock"),
      hint: "apt-get install util-linux",
    },
    {
      name: "ledger directory",
      neededFor: "op apply, op ledger",
      required: true,
      probe: () => creatable(where.ledgerDir),
      hint: "make the ledger's parent directory writable, or pass --ledger DIR / OP_LEDGER",
    },
    {
      name: "lock directory",
      neededFor: "op apply (the host lock)",
      required: true,
      probe: () => creatable(dirname(where.lockFile)),
      hint: "make the lock's directory writable, or point OP_LOCK elsewhere",
    },
    {
      name: "status directory",
      neededFor: "op status and the health a monitor reads (the last runs' outcomes)",
      required: false,
      probe: () => creatable(dirname(settings.statusFile)),
      hint: "make the status file's directory writable, or point OP_STATUS elsewhere",
    },
    {
      name: "cache directory",
      neededFor: "speed only (nftables' normalised rules, the code cache)",
      required: false,
      probe: () => creatable(where.cacheDir),
      hint: "make the cache's parent directory writable, or point OP_CACHE_DIR elsewhere",
    },
  ];
  // A check two plugins share (Open vSwitch) is made once.
  const checks = [
    ...new Set([...own, ...registry.manifests.flatMap((manifest) => manifest.doctor ?? [])]),
  ];

  const results = await Promise.all(
    checks.map(async (check) => {
      try {
        return { ...check, ok: true, found: await check.probe(host) };
      } catch (error) {
        return {
          ...check,
          ok: false,
          found: error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error),
        };
      }
    }),
  );
  const missingRequired = results.some((r) => r.required && !r.ok);
  if (options.json) {
    // An object, not the bare list: a document has its format_version (src/cli/contract.ts).
    printDocument({
      ok: !missingRequired,
      checks: results.map(({ name, neededFor, required, ok, found, hint }) => ({
        name,
        neededFor,
        required,
        ok,
        found,
        ...(ok ? {} : { hint }),
      })),
    });
  } else {
    const rows = results.map((r) => [
      r.ok ? "ok" : r.required ? "MISSING" : "missing",
      r.name,
      r.neededFor,
      r.ok ? r.found : r.hint,
    ]);
    process.stdout.write(
      renderReport("op doctor", {
        columns: ["status", "check", "needed for", "found / how to fix"],
        rows,
      }),
    );
  }
  return missingRequired ? 1 : 0;
}

/**
 * Whether op could write `path` (a directory it uses), creating nothing: the directory itself
 * when it is there, else the nearest ancestor that is, which op would create it under.
 * What it finds, or throws what is in the way.
 */
export async function creatable(path: string): Promise<string> {
  let existing = path;
  for (;;) {
    const found = await stat(existing).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (found !== undefined) {
      if (!found.isDirectory()) throw new Error(`${existing} is not a directory`);
      break;
    }
    if (dirname(existing) === existing) break;
    existing = dirname(existing);
  }
  await access(existing, constants.W_OK | constants.X_OK).catch(() => {
    throw new Error(`${existing} is not writable`);
  });
  return existing === path ? path : `${path} (op would create it under ${existing})`;
}
