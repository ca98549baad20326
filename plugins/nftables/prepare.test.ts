import { describe, expect, it } from "vitest";
import { originPath } from "./prepare.js";
import type { NftTableSpec } from "./types.js";

const specs: NftTableSpec[] = [
  { family: "inet", name: "opv_gone", ensure: "absent" },
  {
    family: "inet",
    name: "opv_t",
    sets: [{ name: "lab", type: "ipv4_addr", elements: ["198.18.0.1", "198.18.0.300"] }],
    maps: [{ name: "ports", type: "inet_service", map: "verdict", elements: [["22", "acept"]] }],
    chains: [
      { name: "other", rules: [] },
      { name: "input", rules: ["accept", "tcp dport 22 acept", "tcp dport 22 acept"] },
    ],
  },
];

describe("originPath (where in the file nft's error points)", () => {
  it("finds a rule, a set element and a map pair by the file's order of tables", () => {
    const table = "inet/opv_t";
    expect(
      originPath({ table, chain: "input", rule: "tcp dport 22 acept" }, specs, "/plugins/nftables"),
    ).toBe("/plugins/nftables/tables/1/chains/1/rules/1");
    expect(
      originPath({ table, set: { kind: "set", name: "lab" }, element: "198.18.0.300" }, specs, ""),
    ).toBe("/tables/1/sets/0/elements/1");
    expect(
      originPath({ table, set: { kind: "map", name: "ports" }, element: "22 : acept" }, specs, ""),
    ).toBe("/tables/1/maps/0/elements/0");
  });

  it("stops at what it can place: the chain, the table, the section", () => {
    expect(originPath({ table: "inet/opv_t", chain: "input" }, specs, "")).toBe(
      "/tables/1/chains/1",
    );
    expect(originPath({ table: "inet/opv_t", chain: "nowhere" }, specs, "")).toBe("/tables/1");
    expect(originPath({ table: "ip/opv_t" }, specs, "/plugins/nftables")).toBe("/plugins/nftables");
    expect(originPath(undefined, specs, "")).toBe("/");
  });
});
