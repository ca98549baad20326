/**
 * `op export` on real hosts, through the built binary: what op made (a varied network in a
 * namespace, containers on a Linux and an OVS bridge, an nftables table with sets and maps) is
 * exported, `op validate` takes the file, and `op plan` of it on the same host plans nothing.
 * A link or table made by hand shows only with --all, and then round-trips too. A missing
 * Incus leaves the lxc section out with a note; a bad command line is refused.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { removeBridge, removeContainers, sh, testId, testImage, uid } from "./support/lxc.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
const namespaces: TestNetns[] = [];

beforeAll(() => {
  sandbox = createCliSandbox();
});
afterAll(() => {
  for (const netns of namespaces) netns.remove();
  sandbox.cleanup();
});

interface StateFile {
  version: number;
  plugins: Record<string, Record<string, unknown[] | undefined>>;
}

function write(name: string, document: unknown): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, typeof document === "string" ? document : JSON.stringify(document));
  return path;
}

/** Runs op, in `netns` when given, and fails the test with op's words when it fails. */
function op(args: string[], netns?: TestNetns, env: Record<string, string> = {}) {
  const result = sandbox.op(args, { ...(netns ? { netns: netns.name } : {}), env });
  if (result.status !== 0) throw new Error(`op ${args.join(" ")}: ${result.stderr}`);
  return result;
}

/** `op export ARGS` as a parsed state file, and its notes. */
function exported(args: string[], netns?: TestNetns): { state: StateFile; stderr: string } {
  const result = op(["export", ...args], netns);
  return { state: JSON.parse(result.stdout) as StateFile, stderr: result.stderr };
}

/** Validates the file, then plans it: the actions op would take. */
function roundTrip(name: string, state: unknown, netns?: TestNetns): unknown[] {
  const path = write(name, state);
  expect(op(["validate", path], netns).stdout).toContain("is valid");
  return (JSON.parse(op(["plan", path, "--json"], netns).stdout) as { actions: unknown[] }).actions;
}

function names(state: StateFile, plugin: string, list: string): string[] {
  return (state.plugins[plugin]?.[list] ?? []).map((entry) => (entry as { name: string }).name);
}

describe("network in a namespace", () => {
  let netns: TestNetns;
  const file = {
    version: 1,
    plugins: {
      network: {
        interfaces: [
          {
            name: "opexbr0",
            type: "linux-bridge",
            mtu: 1400,
            alias: "lab bridge",
            ipv4: { addresses: ["198.18.40.1/24"] },
            ipv6: { addresses: ["fd00:40::1/64"] },
            bridge: { ports: ["opexv0"] },
          },
          { name: "opexv0", type: "veth", veth: { peer: "opexv0p" } },
          {
            name: "opexv1",
            type: "veth",
            veth: { peer: "opexv1p" },
            ipv4: { addresses: ["198.18.41.1/24"] },
          },
          { name: "opexv1p", type: "veth", state: "down" },
          {
            name: "opexm0",
            type: "macvlan",
            macvlan: { base: "opexv1p", mode: "private" },
            ipv4: { addresses: ["198.18.45.1/24"] },
          },
        ],
        routes: [{ to: "198.18.42.0/24", via: "198.18.41.254", dev: "opexv1", metric: 7 }],
      },
    },
  };

  beforeAll(() => {
    netns = createNetns("net", "opex");
    namespaces.push(netns);
    op(["apply", write("net.json", file)], netns);
    // A pair made by hand, with an address and a route: not op's.
    netns.run("ip", ["link", "add", "opexh0", "type", "veth", "peer", "name", "opexh1"]);
    netns.run("ip", ["link", "set", "opexh0", "up"]);
    netns.run("ip", ["addr", "add", "198.18.43.1/24", "dev", "opexh0"]);
    netns.run("ip", ["route", "add", "198.18.44.0/24", "via", "198.18.43.9", "dev", "opexh0"]);
  });

  it("exports what op made, and planning it changes nothing", () => {
    const { state } = exported(["--plugin", "network"], netns);
    expect(names(state, "network", "interfaces").sort()).toEqual(
      ["opexbr0", "opexm0", "opexv0", "opexv0p", "opexv1", "opexv1p"].sort(),
    );
    const interfaces = state.plugins.network?.interfaces as Record<string, unknown>[];
    expect(interfaces.find((i) => i.name === "opexbr0")).toMatchObject({
      type: "linux-bridge",
      mtu: 1400,
      alias: "lab bridge",
      ipv4: { addresses: ["198.18.40.1/24"] },
      ipv6: { addresses: ["fd00:40::1/64"] },
      bridge: { ports: ["opexv0"] },
    });
    expect(interfaces.find((i) => i.name === "opexm0")).toMatchObject({
      macvlan: { base: "opexv1p", mode: "private" },
    });
    expect(state.plugins.network?.routes).toEqual([
      { to: "198.18.42.0/24", via: "198.18.41.254", dev: "opexv1", metric: 7 },
    ]);
    expect(roundTrip("net-owned.json", state, netns)).toEqual([]);
  });

  it("shows a link made by hand only with --all, and that round-trips too (lo never)", () => {
    const { state } = exported(["--plugin", "network", "--all"], netns);
    const all = names(state, "network", "interfaces");
    expect(all).toEqual(expect.arrayContaining(["opexh0", "opexh1", "opexbr0"]));
    expect(all).not.toContain("lo");
    expect(state.plugins.network?.routes).toContainEqual({
      to: "198.18.44.0/24",
      via: "198.18.43.9",
      dev: "opexh0",
      metric: 0,
    });
    expect(roundTrip("net-all.json", state, netns)).toEqual([]);
  });

  it("writes YAML to a file with -o, which plans nothing either", () => {
    const path = join(sandbox.dir, "net.yaml");
    const result = op(["export", "--plugin", "net", "--format", "yaml", "-o", path], netns);
    expect(result.stdout).toBe("");
    const text = readFileSync(path, "utf8");
    expect(text).toMatch(/^version: 1\nplugins:\n {2}network:\n/);
    expect(op(["validate", path], netns).stdout).toContain("is valid");
    expect(op(["plan", path], netns).stdout).toContain("No changes");
  });
});

describe("nftables in a namespace", () => {
  let netns: TestNetns;
  const table = {
    family: "inet",
    name: "opex_fw",
    sets: [
      {
        name: "lab",
        type: "ipv4_addr",
        flags: ["interval"],
        elements: ["198.18.0.0/24", "198.18.9.9"],
      },
      { name: "pairs", type: "ipv4_addr . inet_service", elements: ["198.18.0.1 . 22"] },
      { name: "seen", type: "typeof ip saddr", flags: ["dynamic", "timeout"], timeout: "1h" },
    ],
    maps: [
      {
        name: "verdicts",
        type: "ipv4_addr",
        map: "verdict",
        elements: [
          ["198.18.1.1", "drop"],
          ["198.18.1.2", "jump services"],
        ],
      },
      { name: "ports", type: "inet_service", map: "ipv4_addr", elements: [["80", "198.18.0.5"]] },
    ],
    chains: [
      { name: "services", rules: ["udp dport 53 accept"] },
      {
        name: "input",
        type: "filter",
        hook: "input",
        priority: "filter",
        policy: "drop",
        rules: [
          "ct state established,related accept",
          "tcp dport {22,80} counter accept",
          'ip saddr @lab accept comment "lab"',
          "ip saddr vmap @verdicts",
          "ip saddr . tcp dport @pairs accept",
          "update @seen { ip saddr }",
        ],
      },
    ],
  };

  beforeAll(() => {
    netns = createNetns("nft", "opex");
    namespaces.push(netns);
    op(
      ["apply", write("nft.json", { version: 1, plugins: { nftables: { tables: [table] } } })],
      netns,
    );
    netns.run(
      "nft",
      ["-f", "-"],
      "table ip opex_hand { set s { type ipv4_addr; elements = { 198.18.7.7 }; }; chain c { ip saddr @s counter; }; }\n",
    );
  });

  it("exports op's table with its sets and maps, and planning it changes nothing", () => {
    const { state } = exported(["--plugin", "nftables"], netns);
    const tables = state.plugins.nftables?.tables as { name: string; maps?: unknown[] }[];
    expect(tables.map((t) => t.name)).toEqual(["opex_fw"]);
    expect(tables[0]?.maps).toContainEqual({
      name: "verdicts",
      type: "ipv4_addr",
      map: "verdict",
      elements: [
        ["198.18.1.1", "drop"],
        ["198.18.1.2", "jump services"],
      ],
    });
    expect(roundTrip("nft-owned.json", state, netns)).toEqual([]);
  });

  it("shows a table made by hand only with --all, and that round-trips too", () => {
    const { state } = exported(["--plugin", "nftables", "--all"], netns);
    const tables = state.plugins.nftables?.tables as { name: string }[];
    expect(tables.map((t) => t.name).sort()).toEqual(["opex_fw", "opex_hand"]);
    expect(roundTrip("nft-all.json", state, netns)).toEqual([]);
  });
});

describe("containers on a Linux and an OVS bridge", () => {
  const tag = uid();
  const linux = `opexlb${tag}`;
  const ovs = `opexob${tag}`;
  const internal = `opexoi${tag}`;
  const containers = [`opex-${tag}-a`, `opex-${tag}-b`];
  const [idA, idB] = [testId(), testId()];
  const profile = `opex-${tag}`;
  const incusNetwork = `opexn${tag}`;
  const volume = `opex-${tag}`;
  const subnet = `198.18.${150 + (Number.parseInt(tag, 16) % 100)}`;

  beforeAll(() => {
    const file = {
      version: 1,
      plugins: {
        network: {
          interfaces: [
            { name: linux, type: "linux-bridge", ipv4: { addresses: ["198.18.50.1/24"] } },
            {
              name: ovs,
              type: "ovs-bridge",
              ovs: { ports: [{ name: internal, tag: 20 }] },
            },
            { name: internal, type: "ovs-interface", ipv4: { addresses: ["198.18.51.1/24"] } },
          ],
        },
        lxc: {
          profiles: [
            {
              name: profile,
              description: "export test",
              config: { "environment.OPEXP": "1" },
              devices: { opexdisk: { type: "disk", source: sandbox.dir, path: "/mnt/opex" } },
            },
          ],
          networks: [
            {
              name: incusNetwork,
              ipv4_address: `${subnet}.1/24`,
              ipv4_nat: false,
              ipv4_dhcp: false,
              ipv6_address: "none",
            },
          ],
          volumes: [{ pool: "default", name: volume, size: "32MiB" }],
          containers: [
            {
              id: idA,
              name: containers[0],
              image: testImage,
              bridge: linux,
              limits: { cpu: 1, memory: "128MiB" },
              config: { "environment.OPEX": "yes" },
              volumes: [{ volume, path: "/data" }],
              stop_timeout: 5,
            },
            {
              id: idB,
              name: containers[1],
              image: testImage,
              running: false,
              profiles: ["default", profile],
              nics: [{ name: "eth0", type: "bridged", bridge: ovs, vlan: 10 }],
              stop_timeout: 5,
            },
          ],
        },
      },
    };
    op(["apply", write("lxc.json", file)]);
  });
  afterAll(async () => {
    await removeContainers(containers);
    // Each only if this test made it (a name of its own): missing ones are fine.
    for (const args of [
      ["profile", "delete", profile],
      ["network", "delete", incusNetwork],
      ["storage", "volume", "delete", "default", volume],
    ]) {
      try {
        sh("incus", args);
      } catch {
        // never made, or already gone
      }
    }
    removeBridge(linux);
    removeBridge(ovs);
  });

  it("exports them with their bridges, and planning that changes nothing", () => {
    const { state } = exported(["--plugin", "lxc", "--plugin", "network"]);
    // The host is shared: only this test's objects are planned (others come and go meanwhile).
    const lxc = (state.plugins.lxc?.containers ?? []) as { id: unknown; name?: string }[];
    const ours = lxc.filter((c) => containers.includes(c.name ?? ""));
    expect(ours).toEqual([
      {
        id: idA,
        name: containers[0],
        image: testImage,
        running: true,
        profiles: ["default"],
        config: { "environment.OPEX": "yes", "limits.cpu": "1", "limits.memory": "128MiB" },
        bridge: linux,
        veth: `vi${idA}`,
        volumes: [{ volume, pool: "default", path: "/data" }],
      },
      {
        id: idB,
        name: containers[1],
        image: testImage,
        running: false,
        profiles: ["default", profile],
        nics: [{ name: "eth0", type: "bridged", bridge: ovs, host_name: `vi${idB}`, vlan: 10 }],
      },
    ]);
    const interfaces = (state.plugins.network?.interfaces ?? []) as { name: string }[];
    const mine = interfaces.filter((i) => [linux, ovs, internal].includes(i.name));
    expect(mine.map((i) => i.name).sort()).toEqual([internal, linux, ovs].sort());
    expect(mine.find((i) => i.name === ovs)).toMatchObject({
      type: "ovs-bridge",
      ovs: { ports: [{ name: internal, tag: 20 }] },
    });
    expect(mine.find((i) => i.name === linux)).toMatchObject({ bridge: { ports: [`vi${idA}`] } });
    const lxcSection = state.plugins.lxc ?? {};
    const named = (list: string, name: string) =>
      ((lxcSection[list] ?? []) as { name: string }[]).filter((o) => o.name === name);
    expect(named("profiles", profile)).toEqual([
      {
        name: profile,
        description: "export test",
        config: { "environment.OPEXP": "1" },
        devices: { opexdisk: { type: "disk", source: sandbox.dir, path: "/mnt/opex" } },
      },
    ]);
    expect(named("networks", incusNetwork)).toMatchObject([
      {
        name: incusNetwork,
        config: {
          "ipv4.address": `${subnet}.1/24`,
          "ipv4.nat": "false",
          "ipv4.dhcp": "false",
          "ipv6.address": "none",
        },
      },
    ]);
    expect(named("volumes", volume)).toMatchObject([
      { pool: "default", name: volume, content_type: "filesystem", config: { size: "32MiB" } },
    ]);
    const file = {
      version: 1,
      plugins: {
        network: { interfaces: mine },
        lxc: {
          profiles: named("profiles", profile),
          networks: named("networks", incusNetwork),
          volumes: named("volumes", volume),
          containers: ours,
        },
      },
    };
    expect(roundTrip("lxc-owned.json", file)).toEqual([]);
  });

  it("leaves the OVS bridges out with a note when OVSDB is out of reach, and exits 0", () => {
    const result = sandbox.op(["export", "--plugin", "network"], {
      env: { OP_OVS_RUNDIR: join(sandbox.dir, "no-ovs") },
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain("note: network: Open vSwitch: ");
    const state = JSON.parse(result.stdout) as StateFile;
    const exportedNames = names(state, "network", "interfaces");
    expect(exportedNames).toContain(linux);
    expect(exportedNames).not.toContain(ovs);
  });
});

describe("when a daemon or the command line is wrong", () => {
  it("leaves lxc out with a note when Incus's socket is missing, and exits 0", () => {
    const netns = createNetns("noinc", "opex");
    namespaces.push(netns);
    const socket = join(sandbox.dir, "no-incus.socket");
    const result = sandbox.op(["export", "--plugin", "lxc", "--plugin", "nftables", "--all"], {
      netns: netns.name,
      env: { OP_INCUS_SOCKET: socket },
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`note: lxc: left out, the host could not be read:`);
    expect(result.stderr).toContain(socket);
    const state = JSON.parse(result.stdout) as StateFile;
    expect(state.version).toBe(1);
    expect(Object.keys(state.plugins)).not.toContain("lxc");
  });

  it("refuses an unknown plugin with exit 64, naming it", () => {
    const result = sandbox.op(["export", "--plugin", "nosuch"]);
    expect(result.status).toBe(64);
    expect(result.stderr).toContain('unknown plugin "nosuch"');
    expect(result.stdout).toBe("");
  });

  it("refuses -o into a directory that does not exist, writing nothing", () => {
    const path = join(sandbox.dir, "missing", "state.json");
    const result = sandbox.op(["export", "--plugin", "network", "-o", path]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${join(sandbox.dir, "missing")} is not a directory`);
    expect(existsSync(path)).toBe(false);
  });

  it("refuses --owned with --all", () => {
    const result = sandbox.op(["export", "--owned", "--all"]);
    expect(result.status).toBe(64);
    expect(result.stderr).toMatch(/--owned.*cannot be used with.*--all/);
  });
});
