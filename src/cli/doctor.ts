/** `op doctor`: what this host lacks for each part of op, with how to get it. */
import { access, constants, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { resolvePaths } from "../context.js";
import { createRunner } from "../exec.js";
import { defaultIncusSocket } from "../incus.js";
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
      name: "ovs-vsctl",
      neededFor: "network (Open vSwitch bridges)",
      required: false,
      probe: () => version("ovs-vsctl"),
      hint: "apt-get install openvswitch-switch, then /usr/share/openvswitch/scripts/ovs-ctl start",
    },
    {
      name: "incus",
      neededFor: "lxc (incus backend)",
      required: false,
      probe: async () => {
        const socket = process.env.OP_INCUS_SOCKET || defaultIncusSocket;
        await access(socket, constants.W_OK);
        return socket;
      },
      hint: "install incus-base (bookworm-backports) and start incusd",
    },
    {
      name: "lxc-create",
      neededFor: "lxc (lxc backend)",
      required: false,
      probe: () => version("lxc-create"),
      hint: "apt-get install lxc",
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
