/**
 * op rollback on real netlink and nftables, through the built binary inside a namespace: a run
 * that moves the uplink's address and default route to another bridge, moves a port between
 * bridges, creates a veth pair and replaces an nft table is undone, and the namespace's
 * `ip -j addr/link/route` and `nft -j list ruleset` are then what they were before that run,
 * byte for byte once normalised (nft's handles and counters, the kernel's asynchronous
 * operstate). The undo is refused when the run's resources were changed since, unless --force,
 * and a second undo of the same run is refused.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;

beforeEach(() => {
  sandbox = createCliSandbox();
  netns = createNetns("rb", "oprb");
  netns.run("ip", ["link", "set", "lo", "up"]);
  // No IPv6 duplicate address detection: its `tentative` mark comes and goes with time.
  for (const scope of ["all", "default"])
    netns.run("sysctl", ["-q", "-w", `net.ipv6.conf.${scope}.accept_dad=0`]);
});

afterEach(() => {
  netns.remove();
  sandbox.cleanup();
});

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
const before = {
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
const moved = {
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

function write(name: string, document: unknown): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify(document));
  return path;
}

/** Runs op in the namespace and fails the test with op's words when it fails. */
function op(args: string[]) {
  const result = sandbox.op(args, { netns: netns.name });
  if (result.status !== 0)
    throw new Error(`op ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result;
}

/** Applies `document` and returns the run's id. */
function apply(name: string, document: unknown, ...flags: string[]): string {
  const out = JSON.parse(op(["apply", write(name, document), "--json", ...flags]).stdout) as {
    run: string;
    converged: boolean;
  };
  expect(out.converged).toBe(true);
  return out.run;
}

/** What the namespace's kernel holds, as ip and nft print it, normalised (see the top). */
function dump(): string {
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

describe("op rollback", () => {
  it("undoes a run that moved the uplink, a port, a new veth and a table, byte for byte", () => {
    apply("before.json", before);
    const was = dump();
    const run = apply("moved.json", moved, "--allow-uplink");
    const during = dump();
    expect(during).not.toBe(was);
    expect(during).toContain("oprb-cp");

    const undo = JSON.parse(op(["rollback", run.slice(0, 8), "--json"]).stdout) as {
      run: string;
      file: string;
      converged: boolean;
      outcomes: { kind: string; id: string; status: string }[];
    };
    expect(undo.converged).toBe(true);
    expect(undo.file).toBe(`rollback of run ${run}`);
    expect(undo.outcomes.every((o) => o.status === "ok")).toBe(true);
    expect(undo.outcomes.map((o) => `${o.kind} ${o.id}`)).toContain("delete oprb-c");
    expect(dump()).toBe(was);

    // The undo is a run of its own, whose pre-image record names the run it undid.
    const log = op(["ledger", "log"]).stdout;
    expect(log).toContain(undo.run.slice(0, 8));
    const again = sandbox.op(["rollback", run], { netns: netns.name });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`already undone by run ${undo.run}`);
    // And it can itself be undone: the host is back as the run left it (oprb-c made again,
    // with a new index and MAC), so planning that run's file finds nothing to do.
    op(["rollback", undo.run]);
    const plan = JSON.parse(op(["plan", write("moved.json", moved), "--json"]).stdout) as {
      actions: unknown[];
    };
    expect(plan.actions).toEqual([]);
  });

  it("refuses to undo a run whose resources changed since, unless --force", () => {
    apply("before.json", before);
    const was = dump();
    const run = apply("moved.json", moved, "--allow-uplink");
    netns.run("ip", ["addr", "add", "198.18.42.1/24", "dev", "oprb-b"]);
    netns.run("nft", ["add", "element", "inet", "oprb_t", "oprb_s", "{ 198.18.41.9 }"]);

    const refused = sandbox.op(["rollback", run], { netns: netns.name });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("2 of its resources changed since it ran");
    expect(refused.stderr).toContain("network /interfaces/oprb-b/ipv4/addresses");
    expect(refused.stderr).toContain("nftables /tables/inet/oprb_t/sets");
    // Nothing was changed: the hand-made address is still there.
    expect(netns.run("ip", ["-j", "addr", "show", "oprb-b"])).toContain("198.18.42.1");

    op(["rollback", run, "--force"]);
    expect(dump()).toBe(was);
  });

  it("names what it cannot find", () => {
    const none = sandbox.op(["rollback", "0123abcd"], { netns: netns.name });
    expect(none.stderr).toContain("there is no ledger");
    apply("before.json", before);
    const unknown = sandbox.op(["rollback", "0123abcd"], { netns: netns.name });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("no run 0123abcd");
    const bad = sandbox.op(["rollback", "not a run"], { netns: netns.name });
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain("is not a run id");
  });
});
