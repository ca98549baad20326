/**
 * Each watch source on the real daemon: subscribe, make a real change in things this file
 * made (`opsrc` namespaces, tables, an OVS bridge, an Incus container), and the hint arrives
 * with the right plugin and id; unsubscribing leaves no monitor process and no Incus socket.
 * A source starts listening a moment after subscribe, so each test first pokes its own object
 * until a hint for the poke comes back, and only then makes the change it checks.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { watchSourceIds as ids } from "../plugins/watch-ids.js";
import { loadSettings } from "../src/host/settings.js";
import type { Hint, HintSource } from "../src/watch/hint.js";
import { incusSource } from "../src/watch/sources/incus.js";
import { sourcesFor } from "../src/watch/sources/index.js";
import { ipSource } from "../src/watch/sources/ip.js";
import { nftSource } from "../src/watch/sources/nft.js";
import { ovsdbSource } from "../src/watch/sources/ovsdb.js";
import { createSharedProject } from "./support/lxc.js";

const settings = loadSettings(process.env);
const tag = () => randomBytes(3).toString("hex");
const run = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {}
  }
});

function netns(): string {
  const name = `opsrc-${tag()}`;
  run("ip", "netns", "add", name);
  cleanups.push(() => run("ip", "netns", "delete", name));
  return name;
}

/** Resolves on the next event or after `ms`: a pace for pokes, never an assertion. */
function nextEvent(waiters: (() => void)[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    waiters.push(resolve);
    setTimeout(resolve, ms);
  });
}

/** Subscribes to `source` and records its hints. */
function listen(source: HintSource) {
  const seen: Hint[] = [];
  const waiters: (() => void)[] = [];
  let failure: unknown;
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  const subscription = source.hints().subscribe({
    next: (hint) => {
      seen.push(hint);
      wake();
    },
    error: (error: unknown) => {
      failure = error;
      wake();
    },
  });
  return {
    seen,
    /** The first hint `wanted` accepts; `poke` (when given) is repeated until it comes. */
    async waitFor(wanted: (hint: Hint) => boolean, poke?: () => void): Promise<Hint> {
      for (;;) {
        const found = seen.find(wanted);
        if (found) return found;
        if (failure !== undefined) throw failure;
        poke?.();
        await nextEvent(waiters, poke ? 200 : 60_000);
      }
    },
    stop: () => subscription.unsubscribe(),
  };
}

/** This process's children whose command is `command` (zombies too, until reaped). */
function children(command: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const [, comm = "", rest = ""] = /^\d+ \((.*)\) (.*)$/s.exec(stat) ?? [];
        return comm === command && Number(rest.split(" ")[1]) === process.pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** This process's sockets connected to `socketPath` (by ss's peer inodes of the server's side). */
function socketsTo(socketPath: string): number {
  const peers = new Set(
    run("ss", "-x", "-H")
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[4] === socketPath)
      .map((fields) => fields[7]),
  );
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return peers.has(/^socket:\[(\d+)\]$/.exec(target)?.[1]);
    } catch {
      return false;
    }
  }).length;
}

/** Waits until `condition` holds (bounded by the test's timeout), polling. */
async function eventually(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe("ip monitor source", () => {
  it("hints at a link, an address and a route, and at lxc for a container veth; stops its child", async () => {
    const ns = netns();
    const ip = (...args: string[]) => run("ip", "-n", ns, ...args);
    ip("link", "add", "opsrcpk", "type", "bridge");
    const listener = listen(ipSource(ids, ns));
    try {
      let mtu = 1300;
      await listener.waitFor(
        (hint) => hint.id === "opsrcpk",
        () => ip("link", "set", "opsrcpk", "mtu", String(mtu++)),
      );
      // Counted once it hints: a child just forked still has this process's name until it execs.
      expect(children("ip")).toHaveLength(1);
      ip("link", "add", "opsrcbr", "type", "bridge");
      ip("link", "set", "opsrcbr", "up");
      ip("address", "add", "198.18.9.1/24", "dev", "opsrcbr");
      ip("route", "add", "198.18.10.0/24", "dev", "opsrcbr");
      ip("link", "add", "vi900123", "type", "veth", "peer", "name", "opsrcpeer");
      const route = await listener.waitFor((hint) => hint.id === "198.18.10.0/24 dev opsrcbr");
      expect(route).toMatchObject({ plugin: "network", source: "ip" });
      const address = await listener.waitFor((hint) => /^address 198\.18\.9\.1/.test(hint.what));
      expect(address).toMatchObject({ plugin: "network", id: "opsrcbr" });
      await listener.waitFor((hint) => hint.plugin === "lxc" && hint.id === undefined);
      expect(listener.seen.some((hint) => hint.id === "vi900123")).toBe(true);
    } finally {
      listener.stop();
    }
    await eventually(() => children("ip").length === 0);
  });
});

describe("nft monitor source", () => {
  it("hints at the table created and deleted; stops its child", async () => {
    const ns = netns();
    const nft = (...args: string[]) => run("ip", "netns", "exec", ns, "nft", ...args);
    const listener = listen(nftSource(ids, ns));
    try {
      // Made and deleted in turn: adding a table that is there already is no event, so a poke
      // that came before the monitor listened must not leave the next ones silent.
      let there = false;
      await listener.waitFor(
        (hint) => hint.id === "inet/opsrc_probe",
        () => {
          nft(there ? "delete" : "add", "table", "inet", "opsrc_probe");
          there = !there;
        },
      );
      // Counted once it hints: a child just forked still has this process's name until it execs.
      expect(children("nft").length + children("ip").length).toBe(1);
      nft("add", "table", "ip", "opsrc_t");
      nft("add", "chain", "ip", "opsrc_t", "c");
      nft("delete", "table", "ip", "opsrc_t");
      const deleted = await listener.waitFor((hint) => hint.what === "delete table in ip/opsrc_t");
      expect(deleted).toMatchObject({ plugin: "nftables", id: "ip/opsrc_t", source: "nft" });
      expect(listener.seen.some((hint) => hint.what === "add chain in ip/opsrc_t")).toBe(true);
    } finally {
      listener.stop();
    }
    await eventually(() => children("nft").length + children("ip").length === 0);
  });
});

describe("OVSDB source", () => {
  it("hints at the Open vSwitch id when a bridge's port comes and goes", async () => {
    const bridge = `opsrcbr${tag()}`;
    const port = `opsrcp${tag()}`;
    run("ovs-vsctl", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev");
    cleanups.push(() => run("ovs-vsctl", "--if-exists", "del-br", bridge));
    const socket = `${settings.ovs.runDir}/db.sock`;
    const listener = listen(ovsdbSource(ids, socket, ids.ovsColumns));
    try {
      let poke = 0;
      await listener.waitFor(
        (hint) => hint.what === `Bridge ${bridge} changed`,
        () => run("ovs-vsctl", "set", "bridge", bridge, `external_ids:opsrc-poke=${poke++}`),
      );
      run("ovs-vsctl", "add-port", bridge, port, "--", "set", "interface", port, "type=internal");
      const added = await listener.waitFor((hint) => hint.what.includes(`Port ${port} added`));
      expect(added).toMatchObject({ plugin: "network", id: "Open vSwitch", source: "ovsdb" });
      run("ovs-vsctl", "del-port", bridge, port);
      await listener.waitFor((hint) => hint.what.includes(`Port ${port} deleted`));
      expect(socketsTo(socket)).toBe(1);
    } finally {
      listener.stop();
    }
    await eventually(() => socketsTo(socket) === 0);
  });

  it("is skipped, not an error, when the OVSDB socket is missing", () => {
    const noOvs = { ...settings, ovs: { runDir: `/run/opsrc-none-${tag()}` } };
    expect(sourcesFor(["network"], { settings: noOvs, ids }).map((s) => s.name)).toEqual(["ip"]);
    expect(sourcesFor(["network"], { settings, ids }).map((s) => s.name)).toEqual(["ip", "ovsdb"]);
  });
});

describe("Incus source", () => {
  it("hints at the container started and stopped, and closes its socket on unsubscribe", async () => {
    const name = `opsrc-${tag()}`;
    run("incus", "create", "op-test/busybox", name);
    cleanups.push(() => run("incus", "delete", "--force", name));
    const socket = settings.incus.socket;
    const before = socketsTo(socket);
    const listener = listen(incusSource(ids, socket));
    try {
      let poke = 0;
      await listener.waitFor(
        (hint) => hint.id === name && hint.what === `instance ${name} updated`,
        () => run("incus", "config", "set", name, `user.opsrc-poke=${poke++}`),
      );
      expect(socketsTo(socket)).toBe(before + 1);
      run("incus", "start", name);
      const started = await listener.waitFor((hint) => hint.what === `instance ${name} started`);
      expect(started).toMatchObject({ plugin: "lxc", id: name, source: "incus" });
      run("incus", "stop", "--force", name);
      await listener.waitFor((hint) => hint.what === `instance ${name} stopped`);
    } finally {
      listener.stop();
    }
    await eventually(() => socketsTo(socket) === before);
  });

  it("spells a container in another project PROJECT/NAME", async () => {
    const project = `opsrc-${tag()}`;
    const name = `opsrc-${tag()}`;
    const inProject = (...args: string[]) => run("incus", ...args, "--project", project);
    createSharedProject(project);
    cleanups.push(() => run("incus", "project", "delete", project));
    inProject("create", "op-test/busybox", name);
    cleanups.push(() => inProject("delete", "--force", name));
    const listener = listen(incusSource(ids, settings.incus.socket));
    try {
      let poke = 0;
      await listener.waitFor(
        (hint) => hint.what === `instance ${name} updated`,
        () => inProject("config", "set", name, `user.opsrc-poke=${poke++}`),
      );
      inProject("start", name);
      const started = await listener.waitFor((hint) => hint.what === `instance ${name} started`);
      expect(started).toMatchObject({ plugin: "lxc", id: `${project}/${name}` });
      inProject("stop", "--force", name);
    } finally {
      listener.stop();
    }
  });

  it("errors when the socket is not there", async () => {
    const listener = listen(incusSource(ids, `/run/opsrc-none-${tag()}/unix.socket`));
    await expect(listener.waitFor(() => false)).rejects.toThrow(/Incus is not running/);
  });
});
