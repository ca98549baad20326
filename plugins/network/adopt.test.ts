/**
 * Adoption of links (src/plugin.ts Adoption), beyond the fixture adopt-hand-made: the engine
 * refuses an adopt the file does not allow, at the link's entry, and a link of a type op does
 * not model cannot be adopted at all, since the file has no words for what it is.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { adoptionProblems } from "../../src/engine/reconcile.js";
import type { OpError } from "../../src/errors.js";
import type { NetworkSection } from "../../src/generated/network.js";
import { diffNetwork } from "./diff.js";
import { prepareNetwork } from "./prepare.js";
import type { NetLive } from "./types.js";

const dir = join(import.meta.dirname, "fixtures", "adopt-hand-made");
const live = JSON.parse(readFileSync(join(dir, "live.json"), "utf8")) as NetLive;
const section = JSON.parse(readFileSync(join(dir, "section.json"), "utf8")) as NetworkSection;
const plan = (file: NetworkSection) =>
  diffNetwork(prepareNetwork(file, live, { allowUplink: false }), live);

describe("adopting links", () => {
  it("refuses only the link named without adopt, at its entry; --adopt lets it through", () => {
    const actions = plan(section);
    expect(adoptionProblems(actions, { allowUplink: false }).map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/2",
    ]);
    expect(adoptionProblems(actions, { allowUplink: false, adopt: true })).toEqual([]);
  });

  it("plans nothing more once the links are op's: adopting is once", () => {
    const owned = (name: string) => ({ owned: true, alias: "op:network", name });
    const after: NetLive = {
      ...live,
      links: live.links
        .filter((link) => link.name !== "old9")
        .map((link) =>
          link.name === "br9"
            ? { ...link, ...owned("br9"), mtu: 9000, ipv4: ["198.18.9.1/24"] }
            : link.name === "d9"
              ? { ...link, ...owned("d9"), state: "up" as const }
              : link,
        ),
    };
    const withoutAdopt: NetworkSection = {
      interfaces: (section.interfaces ?? [])
        .filter((iface) => iface.name !== "old9")
        .map(({ adopt: _adopt, ...iface }) => iface),
    };
    expect(diffNetwork(prepareNetwork(withoutAdopt, after, { allowUplink: false }), after)).toEqual(
      [],
    );
  });

  it("leaves a link it does not own that already matches alone, unless the entry adopts it", () => {
    const matching: NetworkSection = { interfaces: [{ name: "d9", type: "dummy", state: "down" }] };
    expect(plan(matching)).toEqual([]);
    const adopted = plan({
      interfaces: [{ name: "d9", type: "dummy", state: "down", adopt: true }],
    });
    expect(adopted.map((a) => [a.kind, a.id, a.reason, a.adopt])).toMatchObject([
      ["modify", "d9", "made outside op: alias - → op:network", { allowed: true }],
    ]);
    // --adopt as the entry's adopt: true.
    const withFlag = diffNetwork(
      prepareNetwork(matching, live, { allowUplink: false, adopt: true }),
      live,
    );
    expect(withFlag.map((a) => a.adopt)).toMatchObject([{ allowed: true }]);
  });

  it("cannot adopt a link of a type op does not model, and says which and where", () => {
    let error: OpError | undefined;
    try {
      plan({ interfaces: [{ name: "tun9", type: "dummy", adopt: true }] });
    } catch (caught) {
      error = caught as OpError;
    }
    expect(error?.code).toBe("invalid-state");
    expect(error?.message).toBe(
      '/plugins/network/interfaces/0: "tun9" exists as a tun link, a type op does not manage, so op cannot adopt or replace it',
    );
    expect(error?.hint).toBe(
      "name another link, declare it as type ethernet to only tune its state, mtu and addresses, or delete it by hand",
    );
  });
});

describe("adopting Open vSwitch bridges", () => {
  const handMade = (name: string) => ({
    name,
    datapath: "system",
    owned: false,
    mtu: 1500,
    ports: [],
  });
  const ovsLive: NetLive = {
    links: [],
    ovs: { available: true, bridges: [handMade("ovsa9"), handMade("ovsb9")] },
    routes: [],
    uplinks: [],
    defaultRoutes: [],
  };
  const file = (adoptA: boolean): NetworkSection => ({
    interfaces: [
      { name: "ovsa9", type: "ovs-bridge", mtu: 1400, ...(adoptA ? { adopt: true } : {}) },
      { name: "ovsb9", type: "ovs-bridge", mtu: 1400 },
    ],
  });

  it("names every entry one transaction would take over without adopt, not just the first", () => {
    // Only the transaction: the bridges' links are not in this hand-written live state.
    const ovsDb = (section: NetworkSection) =>
      diffNetwork(prepareNetwork(section, ovsLive, { allowUplink: false }), ovsLive).filter(
        (a) => a.resource === "ovs-db",
      );
    const actions = ovsDb(file(false));
    expect(actions).toHaveLength(1);
    expect(
      adoptionProblems(actions, { allowUplink: false }).map((p) => [p.path, p.message]),
    ).toEqual([
      [
        "/plugins/network/interfaces/0",
        "network OVS bridge ovsa9 exists and op did not create it, so op will not take it over unless it is adopted",
      ],
      [
        "/plugins/network/interfaces/1",
        "network OVS bridge ovsb9 exists and op did not create it, so op will not take it over unless it is adopted",
      ],
    ]);
    expect(adoptionProblems(ovsDb(file(true)), { allowUplink: false }).map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/1",
    ]);
  });
});
