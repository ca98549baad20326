/**
 * What the rollback and confirm system tests share: a namespace and a CLI sandbox with the
 * prefix oprb-, the two state files (before, and the run to undo), and the namespace's
 * kernel state as ip and nft print it, normalised: nft's handles and counters are not state
 * anyone can restore, and operstate is the kernel's asynchronous view of the flags (UP,
 * LOWER_UP) that are compared.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { type CliSandbox, createCliSandbox } from "./cli.js";
import { createNetns, type TestNetns } from "./netns.js";

export interface RollbackLab {
  sandbox: CliSandbox;
  netns: TestNetns;
  /** Runs op in the namespace and fails the test with op's words when it fails. */
  op(args: string[]): { stdout: string; stderr: string };
  /** Writes `document` into the sandbox; returns its path. */
  write(name: string, document: unknown): string;
  /** Applies `document` (converged, or the test fails) and returns the run's id. */
  apply(name: string, document: unknown, ...flags: string[]): string;
  /** The namespace's addresses, links, routes and nft ruleset, normalised. */
  dump(): string;
  remove(): void;
}

export function createRollbackLab(): RollbackLab {
  const sandbox = createCliSandbox();
  const netns = createNetns("rb", "oprb");
  netns.run("ip", ["link", "set", "lo", "up"]);
  // No IPv6 duplicate address detection: its `tentative` mark comes and goes with time.
  for (const scope of ["all", "default"])
    netns.run("sysctl", ["-q", "-w", `net.ipv6.conf.${scope}.accept_dad=0`]);
  const write = (name: string, document: unknown) => {
    const path = join(sandbox.dir, name);
    writeFileSync(path, JSON.stringify(document));
    return path;
  };
  const op = (args: string[]) => {
    const result = sandbox.op(args, { netns: netns.name });
    if (result.status !== 0)
      throw new Error(`op ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
    return result;
  };
  return {
    sandbox,
    netns,
    op,
    write,
    apply(name, document, ...flags) {
      const out = JSON.parse(op(["apply", write(name, document), "--json", ...flags]).stdout) as {
        run: string;
        converged: boolean;
      };
      expect(out.converged).toBe(true);
      return out.run;
    },
    dump() {
      // The kernel sets a bridge's carrier a moment after its last port leaves: read until
      // two reads agree, so a dump is of the state, not of the moment.
      let previous = "";
      for (let i = 0; i < 50; i++) {
        const now = read();
        if (now === previous) return now;
        previous = now;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      }
      throw new Error("the namespace's state did not settle");
    },
    remove() {
      netns.remove();
      sandbox.cleanup();
    },
  };

  function read(): string {
    const ip = (what: string) => JSON.parse(netns.run("ip", ["-j", what, "show"])) as unknown;
    const nft = JSON.parse(netns.run("nft", ["-j", "list", "ruleset"])) as unknown;
    return JSON.stringify(
      { addr: ip("addr"), link: ip("link"), route: ip("route"), nft },
      (key, value: unknown) => {
        if (key === "handle" || key === "operstate") return undefined;
        if (key === "counter") return { packets: 0, bytes: 0 };
        return value;
      },
      1,
    );
  }
}

const table = (rules: string[]) => ({
  family: "inet",
  name: "oprb_t",
  chains: [
    {
      name: "input",
      type: "filter",
      hook: "input",
      priority: 0,
      policy: "accept",
      rules,
    },
  ],
  sets: [{ name: "oprb_s", type: "ipv4_addr", elements: ["198.18.41.1"] }],
});

/** Before: oprb-a is the uplink (address, default route) with port v0; oprb-b has port v1. */
export const before = {
  version: 1,
  plugins: {
    network: {
      interfaces: [
        {
          name: "oprb-a",
          type: "linux-bridge",
          ipv4: { addresses: ["198.18.40.1/24"] },
          bridge: { ports: ["oprb-v0"] },
        },
        { name: "oprb-b", type: "linux-bridge", bridge: { ports: ["oprb-v1"] } },
        { name: "oprb-v0", type: "veth", veth: { peer: "oprb-v0p" } },
        { name: "oprb-v1", type: "veth", veth: { peer: "oprb-v1p" } },
      ],
      routes: [
        { to: "default", via: "198.18.40.254", dev: "oprb-a" },
        { to: "198.18.50.0/24", via: "198.18.40.253", dev: "oprb-a" },
      ],
    },
    nftables: { tables: [table(["tcp dport 22 accept"])] },
  },
};

/** The run to undo: address, routes and v0 move to oprb-b, a new veth pair, a new table. */
export const moved = {
  version: 1,
  plugins: {
    network: {
      interfaces: [
        { name: "oprb-a", type: "linux-bridge", bridge: { ports: [] } },
        {
          name: "oprb-b",
          type: "linux-bridge",
          ipv4: { addresses: ["198.18.40.1/24"] },
          bridge: { ports: ["oprb-v0", "oprb-v1"] },
        },
        { name: "oprb-v0", type: "veth", veth: { peer: "oprb-v0p" } },
        { name: "oprb-v1", type: "veth", veth: { peer: "oprb-v1p" } },
        { name: "oprb-c", type: "veth", mtu: 1400, veth: { peer: "oprb-cp" } },
      ],
      routes: [
        { to: "default", via: "198.18.40.254", dev: "oprb-b" },
        { to: "198.18.50.0/24", via: "198.18.40.253", dev: "oprb-b" },
      ],
    },
    nftables: { tables: [table(["tcp dport 80 accept", "udp dport 53 counter accept"])] },
  },
};
