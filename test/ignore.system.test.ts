/**
 * `ignore` lists through the built op on the real host: an apply with `prune` leaves alone
 * what a glob matches (a link op created and one made by hand in its bridge, inside a network
 * namespace of this test's own; a container op created) while it prunes what no glob matches;
 * an ignored nftables table is left exactly as it was. Every name starts with `opig`.
 *
 * Prune sees host-global objects (Open vSwitch's bridges, every Incus project), so each file
 * here also ignores every name that does not start with this test's prefix (`allBut`), and
 * each apply runs only after `op plan` showed it touches nothing else.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { allBut } from "./support/ignore.js";
import { testImage } from "./support/lxc.js";

const tag = randomBytes(3).toString("hex");
let sandbox: CliSandbox;
let netns: string;

const sh = (program: string, args: string[]) =>
  execFileSync(program, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const inNetns = (program: string, args: string[]) =>
  sh("ip", ["netns", "exec", netns, program, ...args]);

function write(name: string, plugins: Record<string, unknown>): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins }, null, 2));
  return path;
}

function op(args: string[], where: "netns" | "host" = "netns") {
  return sandbox.op(args, where === "netns" ? { netns } : {});
}

interface PlannedAction {
  kind: string;
  plugin: string;
  id: string;
}

/** The actions `op plan` reports, as it prints them with --json. */
function plan(file: string, where: "netns" | "host" = "netns"): PlannedAction[] {
  const result = op(["--json", "plan", file], where);
  expect(result.status, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { actions: PlannedAction[] }).actions;
}

/** What `op plan` would do, as `kind plugin id` lines. */
function planned(file: string, where: "netns" | "host" = "netns"): string[] {
  return plan(file, where)
    .map((a) => `${a.kind} ${a.plugin} ${a.id}`)
    .sort();
}

function applied(file: string, where: "netns" | "host" = "netns"): void {
  const result = op(["apply", file], where);
  expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
}

function link(name: string): { ifname: string; master?: string } | undefined {
  const [found] = JSON.parse(inNetns("ip", ["-j", "link", "show"])).filter(
    (l: { ifname: string }) => l.ifname === name,
  );
  return found;
}

beforeAll(() => {
  sandbox = createCliSandbox();
  netns = `opig-${tag}`;
  sh("ip", ["netns", "add", netns]);
});

afterAll(() => {
  try {
    sh("ip", ["netns", "delete", netns]);
  } finally {
    sandbox.cleanup();
  }
});

describe("network: prune leaves alone the links a glob matches", () => {
  const prefix = `opig${tag}`;
  const ignored = `${prefix}x1`;
  const handMade = `${prefix}xh`;
  const pruned = `${prefix}y1`;
  const bridge = `${prefix}br`;
  // Everything of the host that is not this test's (Open vSwitch is not per namespace).
  const guard = allBut(prefix);

  it("an owned link and a hand-made bridge port stay, an owned link no glob matches goes", () => {
    const first = write("net-1.json", {
      network: {
        ignore: guard,
        interfaces: [
          { name: ignored, type: "linux-bridge" },
          { name: pruned, type: "linux-bridge" },
          { name: bridge, type: "linux-bridge" },
        ],
      },
    });
    applied(first);
    inNetns("ip", ["link", "add", handMade, "type", "veth", "peer", "name", `${prefix}xp`]);
    inNetns("ip", ["link", "set", handMade, "master", bridge]);

    const section = (ignore: string[]) => ({
      network: { prune: true, ignore, interfaces: [{ name: bridge, type: "linux-bridge" }] },
    });
    // Without the glob, prune deletes the link op made and the bridge loses the foreign port.
    const without = plan(write("net-2.json", section(guard)));
    const lines = without.map((a) => `${a.kind} ${a.plugin} ${a.id}`).sort();
    expect(lines).toEqual([
      `delete network ${ignored}`,
      `delete network ${pruned}`,
      `modify network ${bridge}`,
    ]);
    const takeOut = without.find((a) => a.kind === "modify");
    expect(JSON.stringify(takeOut)).toContain(handMade);

    const file = write("net-3.json", section([...guard, `${prefix}x*`]));
    expect(planned(file)).toEqual([`delete network ${pruned}`]);
    applied(file);
    expect(link(pruned)).toBeUndefined();
    expect(link(ignored)?.ifname).toBe(ignored);
    expect(link(handMade)?.master).toBe(bridge);
    // And the next run finds nothing to do: the ignored links are no drift.
    expect(planned(file)).toEqual([]);
  });
});

describe("nftables: an ignored table is not read into a plan or touched", () => {
  const kept = `opig_${tag}_kept`;
  const other = `opig_${tag}_other`;
  const table = (name: string, rules: string[]) => ({
    family: "inet",
    name,
    chains: [
      { name: "input", type: "filter", hook: "input", priority: 0, policy: "accept", rules },
    ],
  });

  it("keeps a rule added by hand to a table op made, while another table is applied", () => {
    applied(write("nft-1.json", { nftables: { tables: [table(kept, ["counter"])] } }));
    inNetns("nft", ["add", "rule", "inet", kept, "input", "ip", "saddr", "198.18.7.7", "drop"]);
    const before = inNetns("nft", ["list", "table", "inet", kept]);
    // Listed, the hand-made rule is drift op would remove.
    expect(
      planned(write("nft-2.json", { nftables: { tables: [table(kept, ["counter"])] } })),
    ).toEqual([`modify nftables inet/${kept}`]);
    const file = write("nft-3.json", {
      nftables: { ignore: [`inet/opig_${tag}_k*`], tables: [table(other, ["counter"])] },
    });
    expect(planned(file)).toEqual([`create nftables inet/${other}`]);
    applied(file);
    expect(inNetns("nft", ["list", "table", "inet", kept])).toBe(before);
    expect(inNetns("nft", ["list", "tables"])).toContain(`table inet ${other}`);
  });

  it("refuses a glob that matches a table the same file declares, naming both paths", () => {
    const file = write("nft-4.json", {
      nftables: { ignore: ["opig_*"], tables: [table(other, ["counter"])] },
    });
    const result = op(["apply", file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("/plugins/nftables/ignore/0");
    expect(result.stderr).toContain("/plugins/nftables/tables/0/name declares");
  });
});

describe("lxc: prune neither stops nor deletes an ignored container", () => {
  const prefix = `opig-${tag}-`;
  const ignored = `${prefix}a`;
  const pruned = `${prefix}b`;
  const entry = (name: string) => ({ id: name, image: testImage, stop_timeout: 10 });

  afterAll(() => {
    for (const name of [ignored, pruned]) {
      try {
        sh("incus", ["delete", "--force", name]);
      } catch {
        // already gone (pruned, or never made)
      }
    }
  });

  it("deletes the container no glob matches and leaves the ignored one running", () => {
    applied(write("lxc-1.json", { lxc: { containers: [entry(ignored), entry(pruned)] } }), "host");
    const file = write("lxc-2.json", {
      lxc: { prune: true, ignore: [...allBut(prefix), `${prefix}a`], containers: [] },
    });
    // Only this test's container: every other project, profile, network and container is ignored.
    expect(planned(file, "host")).toEqual([`delete lxc ${pruned}`]);
    applied(file, "host");
    const listed = JSON.parse(sh("incus", ["list", "--format", "json", prefix])) as {
      name: string;
      status: string;
    }[];
    expect(listed.map((c) => [c.name, c.status])).toEqual([[ignored, "Running"]]);
  });
});
