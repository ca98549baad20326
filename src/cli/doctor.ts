/** `op doctor`: what this host lacks for each part of op, with how to get it. */
import { access, constants, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { resolvePaths } from "../context.js";
import { createRunner } from "../exec.js";
import { createIncusClient, defaultIncusSocket } from "../incus.js";
import { defaultOvsRunDir, openVswitchDatabase, withOpenVswitch } from "../ovsdb.js";
import { renderReport } from "./output.js";

interface Check {
  name: string;
  neededFor: string;
  required: boolean;
  probe: () => Promise<string>;
  hint: string;
}

export async function doctorCommand(options: {
  json?: boolean;
  ledger?: string;
  ledgerKey?: string;
}): Promise<number> {
  const runner = createRunner();
  const where = resolvePaths({
    ...(options.ledger === undefined ? {} : { ledgerDir: options.ledger }),
    ...(options.ledgerKey === undefined ? {} : { keyFile: options.ledgerKey }),
  });
  const version = async (command: string, args: string[] = ["--version"]): Promise<string> =>
    (await runner.run(command, args)).stdout.split("\n")[0]?.trim() ?? "";

  const checks: Check[] = [
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
      name: "nft",
      neededFor: "nftables",
      required: true,
      probe: () => version("nft"),
      hint: "apt-get install nftables",
    },
    {
      name: "nsenter",
      neededFor: "nftables (rule normalisation)",
      required: true,
      probe: () => version("nsenter"),
      hint: "apt-get install util-linux",
    },
    {
      name: "ip",
      neededFor: "network",
      required: false,
      probe: () => version("ip", ["-V"]),
      hint: "apt-get install iproute2",
    },
    {
      name: "flock",
      neededFor: "op apply (the host lock)",
      required: true,
      probe: () => version("flock"),
      hint: "apt-get install util-linux",
    },
    {
      name: "Open vSwitch (OVSDB socket)",
      neededFor: "network and lxc (Open vSwitch bridges only)",
      required: false,
      probe: () => probeOvsdb(),
      hint: "apt-get install openvswitch-switch, then /usr/share/openvswitch/scripts/ovs-ctl start (scripts/setup-ovs.sh)",
    },
    {
      name: "Incus (socket and API)",
      neededFor: "lxc",
      required: false,
      probe: () => probeIncus(process.env.OP_INCUS_SOCKET || defaultIncusSocket),
      hint: "install incus from bookworm-backports and start incusd (scripts/setup-incus.sh), or point OP_INCUS_SOCKET at its socket",
    },
    {
      name: "ledger directory",
      neededFor: "op apply, op ledger",
      required: true,
      probe: async () => {
        await mkdir(dirname(where.ledgerDir), { recursive: true });
        await access(dirname(where.ledgerDir), constants.W_OK);
        return where.ledgerDir;
      },
      hint: "make the ledger's parent directory writable, or pass --ledger DIR / OP_LEDGER",
    },
  ];

  const results = await Promise.all(
    checks.map(async (check) => {
      try {
        return { ...check, ok: true, found: await check.probe() };
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
    process.stdout.write(
      `${JSON.stringify(
        results.map(({ name, neededFor, required, ok, found, hint }) => ({
          name,
          neededFor,
          required,
          ok,
          found,
          ...(ok ? {} : { hint }),
        })),
        null,
        2,
      )}\n`,
    );
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

/** Seconds a doctor probe waits for a daemon: it answers at once when it is healthy. */
const probeSeconds = 3;

/** Incus's API answers on its socket (the way op talks to it): its server version. */
async function probeIncus(socket: string): Promise<string> {
  const client = createIncusClient(socket, { answerSeconds: probeSeconds });
  try {
    const server = await client.request<{ environment?: { server_version?: string } }>(
      "GET",
      "/1.0",
      undefined,
      { what: "reading the server's information" },
    );
    return `${socket}: Incus ${server.environment?.server_version ?? "(version not given)"}`;
  } finally {
    client.close();
  }
}

/** OVSDB answers a read on its socket (the way op talks to it): Open vSwitch's version. */
async function probeOvsdb(): Promise<string> {
  const rows = await withOpenVswitch(
    defaultOvsRunDir,
    { timeoutMs: probeSeconds * 1000 },
    (session) =>
      session.transact(openVswitchDatabase, [
        { op: "select", table: openVswitchDatabase, where: [], columns: ["ovs_version"] },
      ]),
  );
  const version = rows[0]?.rows?.[0]?.ovs_version;
  return `${defaultOvsRunDir}/db.sock: Open vSwitch ${typeof version === "string" ? version : "(version not set)"}`;
}
