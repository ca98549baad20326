/**
 * The network plugin's safety rules against the real kernel, each in a namespace the test
 * creates: names ip could misread, the uplink guard (the namespace's "uplink" is a veth that
 * carries its default route; the host's own is never touched), routes op never replaces,
 * bridge ports that are not the file's, a veth peer that follows its veth, and container veths
 * the lxc section of the same file declares.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNetworkPlugin } from "../plugins/network/index.js";
import type { Runner } from "../src/exec.js";
import type { Ctx } from "../src/plugin.js";
import { createCliSandbox } from "./support/cli.js";
import { prepareWith } from "./support/engine.js";
import type { TestNetns } from "./support/netns.js";
import { ctxFor, links, netnsWithCtx, reconcile } from "./support/network.js";

let netns: TestNetns;
let exec: Runner;
let ctx: Ctx;

beforeEach(() => {
  ({ netns, exec, ctx } = netnsWithCtx("safe"));
});

afterEach(() => netns.remove());

/** A test uplink: a veth whose peer stays here, addressed, carrying the default route. */
async function makeUplink(metric: number, dev = "opnup0"): Promise<void> {
  await exec.run("ip", ["-batch", "-"], {
    input: [
      `link add name ${dev} type veth peer name ${dev}p`,
      `link set dev ${dev} up`,
      `link set dev ${dev}p up`,
      `addr add 198.18.30.2/24 dev ${dev}`,
      `route add default via 198.18.30.1 dev ${dev} metric ${metric}`,
    ].join("\n"),
  });
}

async function defaultRoutes(): Promise<{ gateway?: string; dev: string; metric?: number }[]> {
  const { stdout } = await exec.run("ip", ["-j", "route", "show", "default"]);
  return JSON.parse(stdout);
}

const summary = (planned: { kind: string; id: string; reason: string }[]) =>
  planned.map((a) => `${a.kind} ${a.id}: ${a.reason}`);

describe("names and aliases through ip -batch", () => {
  it("creates links named like ip's keywords, with an alias holding spaces and a quote", async () => {
    const file = {
      interfaces: [
        { name: "help", type: "linux-bridge", alias: "it's the lab", bridge: { ports: ["up"] } },
        { name: "up", type: "veth", veth: { peer: "down" } },
      ],
    };
    const run = await reconcile(file, ctx);
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    const now = await links(exec);
    expect(now.get("help")?.ifalias).toBe("op:network it's the lab");
    expect(now.get("up")?.master).toBe("help");
    expect(now.get("down")?.flags).toContain("UP");
    expect((await reconcile(file, ctx, { apply: false })).actions).toEqual([]);
  });
});

describe("the uplink guard in a namespace", () => {
  const bridgeWithDefault = (metric?: number) => ({
    interfaces: [{ name: "opnbr0", type: "linux-bridge", ipv4: { addresses: ["198.18.31.1/24"] } }],
    routes: [
      {
        to: "default",
        via: "198.18.31.254",
        dev: "opnbr0",
        ...(metric === undefined ? {} : { metric }),
      },
    ],
  });

  it("refuses a default route that would replace or shadow the namespace's, and never replaces it", async () => {
    await makeUplink(100);
    for (const metric of [undefined, 50, 100]) {
      await expect(reconcile(bridgeWithDefault(metric), ctx, { apply: false })).rejects.toThrow(
        /add a default route on opnbr0 with metric \d+, which would replace or shadow the host's default route on opnup0 \(metric 100\)/,
      );
    }
    expect(await defaultRoutes()).toMatchObject([
      { gateway: "198.18.30.1", dev: "opnup0", metric: 100 },
    ]);

    // Allowed, a default route of the same metric is added, not swapped in: the kernel refuses
    // it (the namespace's route has that key) and the namespace's route stays as it was.
    const allowed = await reconcile(bridgeWithDefault(100), ctxFor(exec, true));
    expect(allowed.failed).toBe(1);
    expect(allowed.records.find((r) => r.status === "failed")?.error).toMatch(
      /route add 0\.0\.0\.0\/0 .*File exists/,
    );
    expect(await defaultRoutes()).toEqual([
      expect.objectContaining({ gateway: "198.18.30.1", dev: "opnup0", metric: 100 }),
    ]);

    // Behind the namespace's route (a higher metric) it is no uplink change.
    const behind = await reconcile(bridgeWithDefault(200), ctx);
    expect(behind.failed).toBe(0);
    expect((await defaultRoutes()).map((r) => `${r.dev} ${r.metric}`)).toEqual([
      "opnup0 100",
      "opnbr0 200",
    ]);
  });

  it("op plan and op apply refuse it with exit 1 and leave the namespace's route alone", async () => {
    await makeUplink(0);
    const sandbox = createCliSandbox();
    try {
      const file = join(sandbox.dir, "default.json");
      writeFileSync(
        file,
        JSON.stringify({ version: 1, plugins: { network: bridgeWithDefault() } }),
      );
      for (const command of ["plan", "apply"]) {
        const result = sandbox.op([command, file], { netns: netns.name });
        expect(result.status, result.stderr).toBe(1);
        expect(result.stderr).toContain(
          "add a default route on opnbr0 with metric 0, which would replace or shadow the host's default route on opnup0 (metric 0)",
        );
        expect(result.stderr).toContain("--allow-uplink");
      }
      expect((await links(exec)).has("opnbr0")).toBe(false);
      expect(await defaultRoutes()).toEqual([
        expect.objectContaining({ gateway: "198.18.30.1", dev: "opnup0" }),
      ]);
    } finally {
      sandbox.cleanup();
    }
  });

  it("never rewrites a route op did not add", async () => {
    await makeUplink(100);
    await exec.run("ip", ["-batch", "-"], {
      input:
        "link add name opnbr0 type bridge\nlink set dev opnbr0 alias op:network\nlink set dev opnbr0 up\naddr add 198.18.31.1/24 dev opnbr0\nroute add 198.18.32.0/24 via 198.18.31.9 dev opnbr0\n",
    });
    const file = {
      interfaces: [
        { name: "opnbr0", type: "linux-bridge", ipv4: { addresses: ["198.18.31.1/24"] } },
      ],
      routes: [{ to: "198.18.32.0/24", via: "198.18.31.254", dev: "opnbr0" }],
    };
    await expect(reconcile(file, ctxFor(exec, true), { apply: false })).rejects.toThrow(
      /\/routes\/0: the route to 198\.18\.32\.0\/24 on "opnbr0" exists \(via 198\.18\.31\.9, metric 0, proto boot\) and op did not add it/,
    );
  });

  it("refuses to enrol the uplink in an existing bridge, or move a port of the uplink's bridge", async () => {
    await makeUplink(0);
    const bridge = { name: "opnbr1", type: "linux-bridge" };
    expect((await reconcile({ interfaces: [bridge] }, ctx)).failed).toBe(0);
    await expect(
      reconcile({ interfaces: [{ ...bridge, bridge: { ports: ["opnup0"] } }] }, ctx, {
        apply: false,
      }),
    ).rejects.toThrow(/enrol opnup0 in bridge opnbr1/);

    // The default route on a bridge made by hand: its port carries the route as well.
    await exec.run("ip", ["-batch", "-"], {
      input: [
        "route del default dev opnup0",
        "link add name opnhand type bridge",
        "link set dev opnhand up",
        "link set dev opnup0p master opnhand",
        "addr add 198.18.33.2/24 dev opnhand",
        "route add default via 198.18.33.1 dev opnhand",
      ].join("\n"),
    });
    const move = { interfaces: [{ ...bridge, bridge: { ports: ["opnup0p"] } }] };
    await expect(reconcile(move, ctx, { apply: false })).rejects.toThrow(
      /enrol opnup0p in bridge opnbr1/,
    );
    const out = {
      interfaces: [
        { name: "opnhand", type: "linux-bridge" },
        { name: "opnup0p", type: "veth" },
      ],
    };
    await expect(reconcile(out, ctx, { apply: false })).rejects.toThrow(
      /take opnup0p out of bridge opnhand/,
    );
    expect((await links(exec)).get("opnup0p")?.master).toBe("opnhand");

    const allowed = await reconcile(move, ctxFor(exec, true));
    expect(allowed.failed).toBe(0);
    expect((await links(exec)).get("opnup0p")?.master).toBe("opnbr1");
  });
});

describe("bridge ports", () => {
  const lab = {
    interfaces: [
      { name: "opnbr2", type: "linux-bridge", bridge: { ports: ["opnv0", "opneth"] } },
      { name: "opnv0", type: "veth", veth: { peer: "opnv0p" } },
    ],
  };

  async function setUp(): Promise<void> {
    await exec.run("ip", ["-batch", "-"], {
      input:
        "link add name opneth type veth peer name opnethp\nlink add name opnhand type bridge\nlink add name opnx type veth peer name opnxp\n",
    });
    expect((await reconcile(lab, ctx)).failed).toBe(0);
  }

  it("sees a port moved to another bridge by hand, and moves it back", async () => {
    await setUp();
    await exec.run("ip", ["-batch", "-"], {
      input: "link set dev opnv0 master opnhand\nlink set dev opneth master opnhand\n",
    });
    const plan = await reconcile(lab, ctx, { apply: false });
    expect(summary(plan.actions).sort()).toEqual([
      "modify opnbr2: +opneth",
      "modify opnv0: master opnhand → opnbr2",
    ]);
    const fix = await reconcile(lab, ctx);
    expect(fix.failed).toBe(0);
    expect(fix.remaining).toEqual([]);
    const now = await links(exec);
    expect(now.get("opnv0")?.master).toBe("opnbr2");
    expect(now.get("opneth")?.master).toBe("opnbr2");
  });

  it("takes a link enslaved by hand out of a bridge op created, unless exclusive_ports is false", async () => {
    await setUp();
    await exec.run("ip", ["link", "set", "dev", "opnx", "master", "opnbr2"]);
    expect(summary((await reconcile(lab, ctx, { apply: false })).actions)).toEqual([
      "modify opnbr2: -opnx",
    ]);
    const open = {
      interfaces: [{ ...lab.interfaces[0], exclusive_ports: false }, lab.interfaces[1]],
    };
    expect((await reconcile(open, ctx, { apply: false })).actions).toEqual([]);
    const fix = await reconcile(lab, ctx);
    expect(fix.failed).toBe(0);
    expect(fix.remaining).toEqual([]);
    expect((await links(exec)).get("opnx")?.master).toBeUndefined();
  });

  it("accepts a container veth the lxc section declares, before it exists and on the bridge", async () => {
    await setUp();
    const plugin = createNetworkPlugin();
    const withGuest = {
      interfaces: [
        { ...lab.interfaces[0], bridge: { ports: ["opnv0", "opneth", "webveth"] } },
        lab.interfaces[1],
      ],
    };
    const lxc = {
      containers: [
        { id: "web", veth: "webveth", bridge: "opnbr2" },
        { id: "db", veth: "opnx", bridge: "opnbr2" },
      ],
    };
    const sections = new Map<string, unknown>([
      ["network", withGuest],
      ["lxc", lxc],
    ]);
    const live = await plugin.query(ctx);
    const desired = await prepareWith(plugin, withGuest, live, ctx, sections);
    expect(desired.pending).toEqual([{ bridge: "opnbr2", port: "webveth" }]);
    // Without the lxc section the name is unknown.
    await expect(prepareWith(plugin, withGuest, live, ctx, new Map())).rejects.toThrow(
      /port "webveth" of bridge "opnbr2" names a link that does not exist/,
    );
    // opnx enrolled (as Incus does for the container db): the lxc section puts it there.
    await exec.run("ip", ["link", "set", "dev", "opnx", "master", "opnbr2"]);
    const after = await plugin.query(ctx);
    const again = await prepareWith(plugin, withGuest, after, ctx, sections);
    expect(plugin.diff(again, after)).toEqual([]);
  });
});

describe("a veth's peer", () => {
  const file = (state?: "up" | "down") => ({
    interfaces: [
      {
        name: "opnv1",
        type: "veth",
        veth: { peer: "opnv1p" },
        ...(state === undefined ? {} : { state }),
        ipv4: { addresses: ["198.18.40.1/24"] },
      },
    ],
    routes: [{ to: "198.18.41.0/24", via: "198.18.40.2", dev: "opnv1" }],
  });

  it("is up with its veth, so routes over it are not linkdown, and follows it down", async () => {
    const run = await reconcile(file(), ctx);
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect((await links(exec)).get("opnv1p")?.flags).toContain("UP");
    const { stdout } = await exec.run("ip", ["-j", "route", "show", "198.18.41.0/24"]);
    expect(JSON.parse(stdout)[0].flags ?? []).not.toContain("linkdown");

    await exec.run("ip", ["link", "set", "dev", "opnv1p", "down"]);
    expect(summary((await reconcile(file(), ctx, { apply: false })).actions)).toEqual([
      "modify opnv1: peer.state down → up",
    ]);
    expect((await reconcile(file(), ctx)).remaining).toEqual([]);
    expect((await links(exec)).get("opnv1p")?.flags).toContain("UP");

    const down = await reconcile(file("down"), ctx);
    expect(down.failed).toBe(0);
    expect((await links(exec)).get("opnv1p")?.flags).not.toContain("UP");
  });
});
