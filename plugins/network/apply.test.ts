/**
 * The `ip -batch` lines of actions (pure): every name after its keyword, every text quoted so
 * that ip's batch reader (iproute2 lib/utils.c: a "#" starts a comment even inside quotes,
 * words split at whitespace, a quote runs to the next same quote) reads back what op meant.
 * test/network.netns.system.test.ts runs such lines against the real `ip`.
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { linesOf } from "./apply.js";
import { ipWord } from "./batch.js";
import { routeId } from "./refs.js";
import { liveLink } from "./testing.js";
import type { DesiredLink, DesiredRoute, LinkCreate, LiveRoute, NetworkAction } from "./types.js";

type IpAction = Exclude<NetworkAction, { resource: "ovs-db" }>;
const texts = (action: IpAction): string[] => linesOf(action).map((line) => line.text);
const plugin = "network";

function create(link: DesiredLink, extra: Partial<LinkCreate> = {}): IpAction {
  return {
    kind: "create",
    plugin,
    resource: "link",
    id: link.name,
    after: { link, ifalias: "op:network", enrol: [], ...extra },
    reason: "",
  };
}

describe("ipWord", () => {
  it("leaves a plain word alone and double-quotes one with spaces or a single quote", () => {
    expect(ipWord("br-0.lan_1")).toBe("br-0.lan_1");
    expect(ipWord("op:network lab bridge")).toBe('"op:network lab bridge"');
    expect(ipWord("it's")).toBe(`"it's"`);
    expect(ipWord("")).toBe('""');
  });

  it("refuses what no quoting carries through ip -batch: #, a double quote, a line break", () => {
    for (const text of ["a#b", 'say "hi"', "two\nlines", "cr\rhere", "nul\u0000"]) {
      expect(() => ipWord(text)).toThrow(OpError);
    }
  });
});

describe("linesOf", () => {
  it("names every link after its keyword, so that a link called up or help is a name", () => {
    expect(
      texts(
        create(
          { name: "up", type: "veth", state: "up", veth: { peer: "help" } },
          { peerState: "up" },
        ),
      ),
    ).toEqual([
      "link add name up type veth peer name help",
      "link set dev up alias op:network",
      "link set dev up up",
      "link set dev help up",
    ]);
    expect(
      texts({
        kind: "delete",
        plugin,
        resource: "link",
        id: "down",
        before: liveLink("down"),
        reason: "",
      }),
    ).toEqual(["link del dev down"]);
  });

  it("quotes an alias with spaces and keeps a single quote in it", () => {
    const link: DesiredLink = { name: "br0", type: "linux-bridge", alias: "lab's bridge" };
    expect(texts(create(link, { ifalias: "op:network lab's bridge" }))).toContain(
      `link set dev br0 alias "op:network lab's bridge"`,
    );
  });

  it("brings a veth's undeclared peer to the veth's state, at create and on drift", () => {
    const veth: DesiredLink = { name: "v0", type: "veth", state: "down", veth: { peer: "v0p" } };
    expect(texts(create(veth, { peerState: "down" })).slice(-2)).toEqual([
      "link set dev v0 down",
      "link set dev v0p down",
    ]);
    // Without peerState (a declared peer does its own), nothing is said of the peer.
    expect(texts(create(veth)).some((line) => line.includes("v0p down"))).toBe(false);
    const drift: IpAction = {
      kind: "modify",
      plugin,
      resource: "link",
      id: "v0",
      before: liveLink("v0"),
      after: { ...veth, state: "up" },
      changes: [{ path: "peer.state", before: "down", after: "up" }],
      reason: "",
    };
    expect(texts(drift)).toEqual(["link set dev v0p up"]);
  });

  it("takes a foreign port out of its bridge and enrols a listed one", () => {
    const action: IpAction = {
      kind: "modify",
      plugin,
      resource: "link",
      id: "br0",
      before: liveLink("br0", { type: "linux-bridge" }),
      after: { name: "br0", type: "linux-bridge" },
      changes: [
        { path: "ports", before: "stray0" },
        { path: "ports", after: "eth1" },
      ],
      reason: "",
    };
    expect(texts(action)).toEqual(["link set dev stray0 nomaster", "link set dev eth1 master br0"]);
  });

  it("adds routes with `route add`, never `route replace`, and deletes only op's (proto static)", () => {
    const route: DesiredRoute = {
      to: "default",
      family: 4,
      via: "198.18.0.1",
      dev: "br0",
      metric: 0,
    };
    const live: LiveRoute = { ...route, metric: 5, protocol: "static" };
    expect(
      texts({
        kind: "create",
        plugin,
        resource: "route",
        id: routeId(route),
        after: route,
        reason: "",
      }),
    ).toEqual(["route add 0.0.0.0/0 via 198.18.0.1 dev br0 metric 0 proto static"]);
    expect(
      texts({
        kind: "modify",
        plugin,
        resource: "route",
        id: routeId(route),
        before: live,
        after: route,
        changes: [{ path: "metric", before: 5, after: 0 }],
        reason: "",
      }),
    ).toEqual([
      "route del 0.0.0.0/0 dev br0 metric 5 proto static",
      "route add 0.0.0.0/0 via 198.18.0.1 dev br0 metric 0 proto static",
    ]);
  });
});

describe("linesOf with an action kind the plugin contract does not have", () => {
  // A plugin bug (a kind added without its lines) fails loudly instead of submitting nothing.
  for (const resource of ["link", "route"] as const) {
    it(`throws for a ${resource} action`, () => {
      const action = { kind: "rename", plugin: "network", resource, id: "x0", reason: "" };
      expect(() => linesOf(action as never)).toThrow(/^unreachable: .*"rename"/);
    });
  }
});
