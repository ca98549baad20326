/**
 * The sources' parsing, on what the real daemons printed here (captured into
 * test/fixtures/watch-sources: `ip -o monitor label`, `nft -j monitor`, Incus's event stream,
 * OVSDB `update` notifications), and on hostile lines.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom } from "rxjs";
import { describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { watchSourceIds as ids } from "../plugins/watch-ids.js";
import { lineSplitter } from "../src/exec.js";
import { defaultSettings } from "../src/host/settings.js";
import { incusEventHints, incusSource } from "../src/watch/sources/incus.js";
import { sourcesFor } from "../src/watch/sources/index.js";
import { ipMonitorHints } from "../src/watch/sources/ip.js";
import { nftMonitorHint } from "../src/watch/sources/nft.js";
import { ovsdbUpdateHint } from "../src/watch/sources/ovsdb.js";

const fixtures = join(import.meta.dirname, "fixtures/watch-sources");
const lines = (name: string) =>
  readFileSync(join(fixtures, name), "utf8")
    .split("\n")
    .filter((line) => line !== "");
/** Plugin and id of each hint, `plugin id` (or `plugin *` for a plugin-wide one). */
const keys = (hints: { plugin: string; id?: string }[]) =>
  hints.map((hint) => `${hint.plugin} ${hint.id ?? "*"}`);

const hostile = [
  "",
  "garbage",
  "[LINK]",
  "[LINK]2: ; rm -rf /: <UP>",
  "[LINK]2: a'b: <UP> mtu 1500",
  '[LINK]2: a"b#%: <UP> mtu 1500',
  "[LINK]2: ..: <UP> mtu 1500",
  "[ADDR]3: a/b    inet 198.18.0.1/24",
  "[ROUTE]198.18.0.0/24 dev `x`/y",
  `[LINK]2: ${"a".repeat(100_000)}: <UP>`,
  "{",
  "null",
  "[]",
  '{"add": null}',
  '{"add": {"table": {"family": "inet; ls", "name": "t"}}}',
  '{"add": {"table": {"family": "inet", "name": "$(x)"}}}',
  '{"type":"lifecycle","project":"default","metadata":{"action":"instance-started","source":"/1.0/instances/a;b"}}',
  '{"type":"lifecycle","project":"a/b","metadata":{"action":"instance-started","source":"/1.0/instances/ok"}}',
  '{"type":"operation","project":"default","metadata":{"status_code":200,"resources":{"instances":[7,"/etc/passwd"]}}}',
  JSON.stringify({ type: "lifecycle", metadata: { action: "x".repeat(100_000) } }),
];

describe("ip monitor", () => {
  it("turns links, addresses and static routes into network hints; veths also into an lxc hint", () => {
    const hints = lines("ip-monitor.txt").flatMap((line) => ipMonitorHints(line, ids));
    expect(new Set(keys(hints))).toEqual(
      new Set([
        "network vp4242",
        "network vi4242",
        "network vi4243",
        "lxc *",
        "network 198.18.6.0/24 dev vi4242",
        "network default dev vi4242",
      ]),
    );
    // Routes the kernel made for an address (local, broadcast, proto kernel) give none.
    expect(hints.map((hint) => hint.what)).not.toContain("route local dev vi4242 changed");
    expect(hints.map((hint) => hint.what)).toContain("link vi4243 deleted");
  });

  it("keeps a name with shell characters the network plugin allows as it is, as data", () => {
    expect(keys(ipMonitorHints("[LINK]2: $(reboot)@x: <UP> mtu 1500", ids))).toEqual([
      "network $(reboot)",
    ]);
  });

  it("spells an IPv6 default route the way the network plugin does", () => {
    const hints = ipMonitorHints("[ROUTE]default dev br0 metric 1024 pref medium", ids);
    expect(keys(hints)).toEqual(["network ::/0 dev br0"]);
  });

  it("gives a plugin-wide hint for a route whose destination it cannot spell as an id", () => {
    expect(keys(ipMonitorHints("[ROUTE]198.18.7.1 via 198.18.5.2 dev br0", ids))).toEqual([
      "network *",
    ]);
  });
});

describe("nft -j monitor", () => {
  it("names the table of every object changed", () => {
    const hints = lines("nft-monitor.jsonl").map((line) => nftMonitorHint(line, ids));
    expect(hints.every((hint) => hint !== undefined)).toBe(true);
    expect(new Set(keys(hints.flatMap((hint) => (hint ? [hint] : []))))).toEqual(
      new Set(["nftables inet/opsrc_t", "nftables ip6/opsrc_6"]),
    );
    expect(hints[2]?.what).toBe("add rule in inet/opsrc_t");
  });
});

describe("Incus events", () => {
  it("turns instance lifecycle events and ended operations into container hints", () => {
    const hints = lines("incus-events.jsonl").flatMap((line) => incusEventHints(line, ids));
    expect(new Set(keys(hints))).toEqual(
      new Set([
        "lxc opsrc-cap1",
        "lxc opsrc-capp/opsrc-cap2",
        "lxc opsrc-capp/opsrc-cap3",
        // project-created and project-deleted: the lxc plugin manages projects.
        "lxc *",
      ]),
    );
    const whats = hints.map((hint) => hint.what);
    expect(whats).toContain("instance opsrc-cap1 started");
    expect(whats).toContain("instance opsrc-cap2 renamed to opsrc-cap3");
    // Progress reports of running operations give none.
    expect(whats.some((what) => / (Running|Pending)$/.test(what))).toBe(false);
  });

  it("ignores what op does not act on (snapshots, logs, certificates)", () => {
    for (const action of [
      "instance-snapshot-created",
      "instance-log-retrieved",
      "certificate-created",
    ]) {
      const event = {
        type: "lifecycle",
        project: "default",
        metadata: { action, source: "/1.0/instances/c1" },
      };
      expect(incusEventHints(JSON.stringify(event), ids)).toEqual([]);
    }
  });
});

describe("OVSDB updates", () => {
  it("gives the network plugin's one Open vSwitch id, naming the rows changed", () => {
    const hints = lines("ovsdb-updates.jsonl").map((line) => {
      const message = JSON.parse(line) as { params: [number, unknown] };
      return ovsdbUpdateHint(message.params[1], ids);
    });
    expect(hints).toHaveLength(5);
    expect(new Set(keys(hints.flatMap((hint) => (hint ? [hint] : []))))).toEqual(
      new Set(["network Open vSwitch"]),
    );
    expect(hints[2]?.what).toBe("Port opsrcp9 changed");
    expect(hints[0]?.what).toBe(
      "Interface opsrcbr9 added, Port opsrcbr9 added, Bridge opsrcbr9 added",
    );
  });

  it("gives none for an update that names no row, and keeps odd names out of the log", () => {
    expect(ovsdbUpdateHint({}, ids)).toBeUndefined();
    expect(ovsdbUpdateHint({ Bridge: { u: {} } }, ids)).toBeUndefined();
    const hint = ovsdbUpdateHint({ Bridge: { u: { new: { name: "a\nb\u001b[31m" } } } }, ids);
    expect(hint?.what).toBe("Bridge added");
  });
});

describe("hostile input", () => {
  it("gives no hint and does not throw", () => {
    for (const line of hostile) {
      expect(ipMonitorHints(line, ids)).toEqual([]);
      expect(nftMonitorHint(line, ids)).toBeUndefined();
      expect(incusEventHints(line, ids)).toEqual([]);
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = line;
      }
      expect(ovsdbUpdateHint(parsed, ids)).toBeUndefined();
    }
  });
});

describe("lineSplitter", () => {
  it("joins lines cut across chunks and drops one longer than the limit, to its end", () => {
    const split = lineSplitter(8);
    expect(split("ab")).toEqual([]);
    expect(split("c\nde")).toEqual(["abc"]);
    expect(split("fghijklmn")).toEqual([]);
    expect(split("opqrstuvwxyz")).toEqual([]);
    expect(split("tail\nok\n")).toEqual(["ok"]);
  });
});

describe("sourcesFor", () => {
  const names = (plugins: string[]) =>
    sourcesFor(plugins, {
      settings: { ...defaultSettings, ovs: { runDir: "/nonexistent-opsrc" } },
      ids,
    }).map((source) => source.name);

  it("starts only the sources the file's plugins need, and skips OVSDB with no socket", () => {
    expect(names(["nftables"])).toEqual(["nft"]);
    expect(names(["lxc"])).toEqual(["incus", "ip"]);
    expect(names(["network"])).toEqual(["ip"]);
    expect(names(["sysctl"])).toEqual([]);
  });
});

describe("the Incus source's stream", () => {
  /** A stand-in for Incus's event endpoint on a unix socket, its connection handled by `send`. */
  async function fakeIncus(
    send: (socket: import("ws").WebSocket) => void,
  ): Promise<{ path: string; urls: string[]; close: () => void }> {
    const dir = mkdtempSync(join(tmpdir(), "opsrc-incus-"));
    const path = join(dir, "unix.socket");
    const urls: string[] = [];
    const server = createServer();
    const wss = new WebSocketServer({ server });
    wss.on("connection", (socket, request) => {
      urls.push(request.url ?? "");
      send(socket);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return {
      path,
      urls,
      close: () => {
        wss.close();
        server.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  it("asks for every project's lifecycle and operation events, and errors when the socket closes", async () => {
    const event = lines("incus-events.jsonl").find((line) => line.includes('"instance-started"'));
    const incus = await fakeIncus((socket) => {
      socket.send(event ?? "");
      socket.send("not json");
      socket.close();
    });
    try {
      const seen: string[] = [];
      let ended: unknown;
      incusSource(ids, incus.path)
        .hints()
        .subscribe({
          next: (hint) => seen.push(hint.what),
          error: (error: unknown) => {
            ended = error;
          },
        });
      await expect.poll(() => ended).toBeDefined();
      expect((ended as Error).message).toBe(`Incus's event stream at ${incus.path} closed`);
      expect(seen).toEqual(["instance opsrc-cap1 started"]);
      expect(incus.urls).toEqual(["/1.0/events?type=lifecycle,operation&all-projects=true"]);
    } finally {
      incus.close();
    }
  });

  it("errors on an event larger than any Incus sends, rather than keeping it", async () => {
    const incus = await fakeIncus((socket) => socket.send("x".repeat(5 * 1024 * 1024)));
    try {
      const error = await firstValueFrom(incusSource(ids, incus.path).hints()).catch(
        (e: unknown) => e,
      );
      expect((error as Error).message).toMatch(/^Incus's event stream at .* failed: .*payload/i);
    } finally {
      incus.close();
    }
  });
});
