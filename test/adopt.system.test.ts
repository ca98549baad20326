/**
 * Explicit adoption through the built `op` binary, on real objects made by hand: a Linux bridge
 * and an nftables table in a namespace of the test's own (`opad-…`), and a busybox container
 * launched with the incus CLI (`opad-…`). Named in the file without adopt, each refuses the plan
 * at its entry and is left as it was; adopted (`adopt: true` or `--adopt`), it becomes op's in
 * one `adopt` step, and a later plan without adopt finds nothing to do.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { sh, testImage } from "./support/lxc.js";

const tag = randomBytes(3).toString("hex");
const netns = `opad-${tag}`;
const bridge = "opadbr0";
const table = `opad_${tag}`;
const container = `opad-${tag}`;
/** An Incus managed network makes a host bridge: 15 characters at most. */
const incusNetwork = `opadn${tag}`;
/** Open vSwitch has one database per host: the bridge is the host's, under the test's prefix. */
const ovsBridge = `opado${tag}`;
const ovsPort = `opadp${tag}`;
const vsctl = (...args: string[]): string =>
  execFileSync("ovs-vsctl", ["--timeout=10", ...args], { encoding: "utf8" }).trim();
let sandbox: CliSandbox;

const inNs = (command: string, args: string[], input?: string): string =>
  execFileSync("ip", ["netns", "exec", netns, command, ...args], {
    encoding: "utf8",
    ...(input === undefined ? {} : { input }),
  });

function stateFile(name: string, plugins: object): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins }));
  return path;
}

/** The refusal every unadopted object gets: its entry, the two ways to adopt, exit 1. */
function expectRefused(result: { status: number; stderr: string }, path: string, what: string) {
  expect(result.status, result.stderr).toBe(1);
  expect(result.stderr).toContain(
    `${path}: ${what} exists and op did not create it, so op will not take it over unless it is adopted`,
  );
  expect(result.stderr).toContain(
    'add "adopt": true to its entry in the file, or run with --adopt',
  );
}

beforeAll(() => {
  sandbox = createCliSandbox();
  execFileSync("ip", ["netns", "add", netns]);
});
afterAll(() => {
  execFileSync("ip", ["netns", "delete", netns]);
  vsctl("--if-exists", "del-br", ovsBridge);
  for (const args of [
    ["delete", "--force", container],
    ["network", "delete", incusNetwork],
  ]) {
    try {
      sh("incus", args);
    } catch {
      // Never made (an earlier failure) or already gone.
    }
  }
  sandbox?.cleanup();
});

describe("adopting a hand-made link", () => {
  it("is refused without adopt, adopted with adopt: true, then op's", () => {
    inNs("ip", ["link", "add", bridge, "type", "bridge"]);
    const entry = (adopt?: boolean) => ({
      interfaces: [{ name: bridge, type: "linux-bridge", mtu: 1400, ...(adopt ? { adopt } : {}) }],
    });
    const before = inNs("ip", ["-d", "link", "show", bridge]);
    expectRefused(
      sandbox.op(["apply", stateFile("net.json", { network: entry() })], { netns }),
      "/plugins/network/interfaces/0",
      `network link ${bridge}`,
    );
    expect(inNs("ip", ["-d", "link", "show", bridge])).toBe(before);

    const adopted = sandbox.op(["apply", stateFile("net-adopt.json", { network: entry(true) })], {
      netns,
    });
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain(`~ adopt network link ${bridge}  (made outside op: `);
    const shown = inNs("ip", ["-d", "link", "show", bridge]);
    expect(shown).toContain("mtu 1400");
    expect(shown).toContain("alias op:network");

    // op's now: the file without adopt plans nothing.
    const later = sandbox.op(["plan", stateFile("net.json", { network: entry() })], { netns });
    expect(later.status, later.stderr).toBe(0);
    expect(later.stdout).toBe("No changes: the host matches the file.\n");
  });
});

describe("adopting a hand-made Open vSwitch bridge", () => {
  it("is refused without adopt, adopted with adopt: true with its internal port, then op's", () => {
    vsctl(
      ...["add-br", ovsBridge, "--", "set", "bridge", ovsBridge, "datapath_type=netdev"],
      ...["--", "add-port", ovsBridge, ovsPort, "--", "set", "interface", ovsPort, "type=internal"],
    );
    const entry = (adopt?: boolean) => ({
      interfaces: [
        {
          name: ovsBridge,
          type: "ovs-bridge",
          // The tag is what the file changes: a hand-made bridge that already matched would be
          // left alone, not taken over.
          ovs: { ports: [{ name: ovsPort, tag: 10 }] },
          ...(adopt ? { adopt } : {}),
        },
        { name: ovsPort, type: "ovs-interface", ...(adopt ? { adopt } : {}) },
      ],
    });
    expectRefused(
      sandbox.op(["apply", stateFile("ovs.json", { network: entry() })]),
      "/plugins/network/interfaces/0",
      `network OVS bridge ${ovsBridge}`,
    );
    expect(vsctl("br-get-external-id", ovsBridge)).toBe("");

    const adopted = sandbox.op(["apply", stateFile("ovs-adopt.json", { network: entry(true) })]);
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain(`~ adopt network ovs-db`);
    expect(adopted.stdout).toContain(`bridge ${ovsBridge}/owner - → op`);
    expect(vsctl("br-get-external-id", ovsBridge)).toContain("op-managed=true");
    expect(adopted.stdout).toContain(`port ${ovsBridge}/${ovsPort}/owner - → op`);
    expect(vsctl("get", "port", ovsPort, "external_ids")).toContain('op-managed="true"');
    expect(vsctl("get", "port", ovsPort, "tag")).toBe("10");

    const later = sandbox.op(["plan", stateFile("ovs.json", { network: entry() })]);
    expect(later.status, later.stderr).toBe(0);
    expect(later.stdout).toBe("No changes: the host matches the file.\n");
  });
});

describe("adopting a hand-made nftables table", () => {
  it("is refused without adopt, adopted with --adopt, then op's", () => {
    inNs("nft", ["-f", "-"], `table inet ${table} {\n chain c {\n  tcp dport 7777 accept\n }\n}\n`);
    const file = stateFile("nft.json", {
      nftables: {
        tables: [
          { family: "inet", name: table, chains: [{ name: "c", rules: ["tcp dport 22 accept"] }] },
        ],
      },
    });
    const before = inNs("nft", ["list", "table", "inet", table]);
    expectRefused(
      sandbox.op(["apply", file], { netns }),
      "/plugins/nftables/tables/0",
      `nftables table inet/${table}`,
    );
    expect(inNs("nft", ["list", "table", "inet", table])).toBe(before);

    const adopted = sandbox.op(["apply", file, "--adopt"], { netns });
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain(`~ adopt nftables table inet/${table}`);
    const listing = inNs("nft", ["list", "table", "inet", table]);
    expect(listing).toContain('comment "managed by op"');
    expect(listing).toContain("dport 22");
    expect(listing).not.toContain("7777");

    const later = sandbox.op(["plan", file], { netns });
    expect(later.status, later.stderr).toBe(0);
    expect(later.stdout).toBe("No changes: the host matches the file.\n");
  });
});

describe("adopting a hand-launched container", () => {
  it("is refused without adopt, adopted with --adopt, then op's", () => {
    sh("incus", ["init", testImage, container, "-q"]);
    const file = stateFile("lxc.json", {
      // The limit is what the file changes: a hand-launched container that matched the file but
      // for op's tags would be left alone, not taken over.
      lxc: {
        containers: [{ id: container, image: testImage, running: false, limits: { cpu: 1 } }],
      },
    });
    expectRefused(
      sandbox.op(["apply", file]),
      "/plugins/lxc/containers/0",
      `lxc container ${container}`,
    );
    expect(sh("incus", ["config", "get", container, "user.op.managed"]).trim()).toBe("");
    expect(sh("incus", ["config", "get", container, "limits.cpu"]).trim()).toBe("");

    const adopted = sandbox.op(["apply", file, "--adopt"]);
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain(`~ adopt lxc container ${container}  (made outside op: `);
    expect(sh("incus", ["config", "get", container, "user.op.managed"]).trim()).toBe("true");
    expect(sh("incus", ["config", "get", container, "limits.cpu"]).trim()).toBe("1");
    const records = sandbox.op(["ledger", "log", "--json"]);
    expect(records.stdout).toContain('"action":"adopt"');

    const later = sandbox.op(["plan", file]);
    expect(later.status, later.stderr).toBe(0);
    expect(later.stdout).toBe("No changes: the host matches the file.\n");
  });
});

describe("adopting a hand-made Incus network", () => {
  it("is refused without adopt; with --adopt only the file's key changes and it stays theirs; delete needs adopt too", () => {
    sh("incus", [
      "network",
      "create",
      incusNetwork,
      "ipv4.address=198.18.231.1/24",
      "ipv4.nat=false",
      "ipv6.address=none",
    ]);
    const entry = { name: incusNetwork, ipv4_address: "198.18.231.1/24", ipv4_dhcp: false };
    const file = stateFile("incus-net.json", { lxc: { networks: [entry] } });
    expectRefused(
      sandbox.op(["apply", file]),
      "/plugins/lxc/networks/0",
      `lxc network ${incusNetwork}`,
    );
    expect(sh("incus", ["network", "get", incusNetwork, "ipv4.dhcp"]).trim()).toBe("");

    const adopted = sandbox.op(["apply", file, "--adopt"]);
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain(`~ adopt lxc network ${incusNetwork}`);
    expect(sh("incus", ["network", "get", incusNetwork, "ipv4.dhcp"]).trim()).toBe("false");
    // Someone else's still: op set the file's key and no ownership tag.
    expect(sh("incus", ["network", "get", incusNetwork, "user.op.managed"]).trim()).toBe("");
    expect(sh("incus", ["network", "get", incusNetwork, "ipv4.nat"]).trim()).toBe("false");
    const records = sandbox
      .op(["ledger", "log", "--json"])
      .stdout.trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { action?: string; target?: string });
    expect(records.filter((r) => r.target === incusNetwork).map((r) => r.action)).toContain(
      "adopt",
    );
    const later = sandbox.op(["plan", file]);
    expect(later.stdout).toBe("No changes: the host matches the file.\n");

    const gone = { lxc: { networks: [{ name: incusNetwork, ensure: "absent" }] } };
    const refused = sandbox.op(["apply", stateFile("incus-net-gone.json", gone)]);
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(
      `/plugins/lxc/networks/0: lxc network ${incusNetwork} exists and op did not create it, so op will not delete it unless it is adopted`,
    );
    const adoptGone = {
      lxc: { networks: [{ name: incusNetwork, ensure: "absent", adopt: true }] },
    };
    const deleted = sandbox.op(["apply", stateFile("incus-net-adopt-gone.json", adoptGone)]);
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(sh("incus", ["network", "list", "-f", "csv", "-c", "n"])).not.toContain(incusNetwork);
  });
});
