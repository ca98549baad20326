/**
 * Deleting many links through one link group (plugins/network/link-delete.ts), against real
 * `ip` in a throw-away namespace: the group delete removes exactly the planned links (and the
 * peers of planned veths), never a link in another group or in group 0; a link someone puts
 * into op's group before the delete stops the shortcut; and the network plugin's deletes
 * take this path through the engine.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLinkDeleter, groupFrom, groupRange } from "../plugins/network/link-delete.js";
import { createRunner } from "../src/exec.js";
import type { Logger } from "../src/plugin.js";
import { recordingRunner } from "./support/engine.js";
import { createNetns, type TestNetns } from "./support/netns.js";
import { ctxFor, reconcile } from "./support/network.js";

let netns: TestNetns;

beforeEach(() => {
  netns = createNetns("ldel", "oprf");
});

afterEach(() => netns.remove());

/** Each link's group, by name, as the kernel has it (numbers: `-N`). */
function groups(): Map<string, number> {
  const shown = JSON.parse(netns.run("ip", ["-N", "-j", "link", "show"])) as {
    ifname?: string;
    group?: string;
  }[];
  return new Map(shown.flatMap((l) => (l.ifname ? [[l.ifname, Number(l.group)]] : [])));
}

function veths(...names: string[]): void {
  netns.run(
    "ip",
    ["-batch", "-"],
    names.map((n) => `link add name ${n} type veth peer name ${n}p`).join("\n"),
  );
}

function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, debug: () => {}, info: () => {}, warn: (m) => lines.push(m) };
}

const calls = (spy: { calls: string[][] }, text: RegExp): number =>
  spy.calls.filter((c) => text.test(c.join(" "))).length;

describe("deleting links through a link group", () => {
  it("deletes exactly the planned links and their peers, not a link in another group or in group 0", async () => {
    veths("oprf-a1", "oprf-a2", "oprf-a3", "oprf-a4", "oprf-a5", "oprf-k0", "oprf-k7");
    netns.run("ip", ["link", "set", "dev", "oprf-k7", "group", "7"]);
    // A macvlan on a planned veth's peer: the kernel takes it along, which is no stranger's loss.
    netns.run("ip", ["link", "add", "oprf-m1", "link", "oprf-a1p", "type", "macvlan"]);
    // One on a kept link stays.
    netns.run("ip", ["link", "add", "oprf-m0", "link", "oprf-k0", "type", "macvlan"]);
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const log = warnings();
    const deleter = createLinkDeleter(spy, { log });
    // a5 and its peer are both planned: the kernel deletes the pair once, both count as done.
    const planned = ["oprf-a1", "oprf-a2", "oprf-a3p", "oprf-a4", "oprf-a5", "oprf-a5p"];
    const results = await Promise.allSettled(planned.map((n) => deleter.delete(n, n)));
    expect(results.map((r) => r.status)).toEqual(planned.map(() => "fulfilled"));

    expect(groups()).toEqual(
      new Map([
        ["lo", 0],
        ["oprf-k0", 0],
        ["oprf-k0p", 0],
        ["oprf-m0", 0],
        ["oprf-k7", 7],
        ["oprf-k7p", 0],
      ]),
    );
    // One group delete, no link deleted one by one, nothing to warn about (oprf-m1 went with
    // its base, as it would with a plain delete).
    expect(calls(spy, /^ip link del group \d+$/)).toBe(1);
    expect(calls(spy, /link del dev/)).toBe(0);
    const group = Number(
      spy.calls.find((c) => c.join(" ").startsWith("ip link del group"))?.at(-1),
    );
    expect(group).toBeGreaterThanOrEqual(groupRange.min);
    expect(group).toBeLessThanOrEqual(groupRange.max);
    expect(log.lines).toEqual([]);
  });

  it("takes the plain path below the threshold, and counts a link already gone as deleted", async () => {
    const names = Array.from({ length: groupFrom - 1 }, (_, i) => `oprf-b${i}`);
    veths(...names.slice(1)); // the first is never made: gone already
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const deleter = createLinkDeleter(spy);
    await Promise.all(names.map((n) => deleter.delete(n, n)));
    expect([...groups().keys()]).toEqual(["lo"]);
    expect(calls(spy, /group/)).toBe(0);
  });

  it("does not delete a group that holds a link op did not put there: its own links go one by one", async () => {
    veths("oprf-c1", "oprf-c2", "oprf-c3", "oprf-c4", "oprf-s1");
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const log = warnings();
    let picked = 0;
    const deleter = createLinkDeleter(spy, {
      log,
      // Another tool's move, staged at the one moment it could happen: after op read the
      // groups in use and picked a free one, before op deletes it.
      pickGroup: (used) => {
        picked = groupRange.min + 1234;
        expect(used.has(picked)).toBe(false);
        netns.run("ip", ["link", "set", "dev", "oprf-s1", "group", String(picked)]);
        return picked;
      },
    });
    const planned = ["oprf-c1", "oprf-c2", "oprf-c3", "oprf-c4"];
    await Promise.all(planned.map((n) => deleter.delete(n, n)));

    // op's links (with their peers) are gone; the stranger stays, in the group it was put in.
    expect(groups()).toEqual(
      new Map([
        ["lo", 0],
        ["oprf-s1", picked],
        ["oprf-s1p", 0],
      ]),
    );
    expect(calls(spy, /^ip link del group/)).toBe(0);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toContain(`link group ${picked} also holds oprf-s1`);
  });

  it("is the network plugin's delete: a run that deletes many links deletes one group", async () => {
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const ctx = ctxFor(spy);
    const names = ["oprf-d1", "oprf-d2", "oprf-d3", "oprf-d4"];
    const made = await reconcile(
      {
        interfaces: [
          { name: "oprf-br", type: "linux-bridge", bridge: { ports: names } },
          ...names.map((name) => ({ name, type: "veth", veth: { peer: `${name}p` } })),
        ],
      },
      ctx,
    );
    expect(made.failed).toBe(0);
    veths("oprf-other");
    spy.calls.length = 0;

    const run = await reconcile(
      {
        interfaces: [
          { name: "oprf-br", type: "linux-bridge", ensure: "absent" },
          ...names.map((name) => ({ name, type: "veth", ensure: "absent" })),
        ],
      },
      ctx,
    );
    expect(run.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect([...groups().keys()].sort()).toEqual(["lo", "oprf-other", "oprf-otherp"]);
    // The veths (one wave) as a group; the bridge after its ports, alone, the plain way.
    expect(calls(spy, /^ip link del group \d+$/)).toBe(1);
  });
});
