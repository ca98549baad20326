/**
 * The OVSDB side of the network plugin, as pure functions: the rows OVSDB returns turned into
 * live bridges, and an `ovs-db` action's changes turned into one transaction's operations.
 * test/network.ovs.system.test.ts runs the same against a real ovsdb-server.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { OvsdbOperation } from "../../src/ovsdb.js";
import { ovsOperations, parseOvsRows } from "./ovs.js";
import { ovsChange } from "./ovs-changes.js";
import type { NetworkAction, OvsChange } from "./types.js";

const noUuids = { bridges: new Map<string, string>(), ports: new Map<string, string>() };
const owner = [
  "map",
  [
    ["op-managed", "true"],
    ["op-plugin", "network"],
  ],
];

/** Every named-uuid an operation refers to must have been inserted by an earlier one. */
function referencesBeforeDefinitions(operations: readonly OvsdbOperation[]): string[] {
  const defined = new Set<string>();
  const problems: string[] = [];
  for (const operation of operations) {
    const text = JSON.stringify({ ...operation, "uuid-name": undefined });
    for (const [, name] of text.matchAll(/\["named-uuid","([^"]+)"\]/g)) {
      if (!defined.has(name as string)) problems.push(`${name} used before it is inserted`);
    }
    if (typeof operation["uuid-name"] === "string") defined.add(operation["uuid-name"]);
  }
  return problems;
}

function inserted(operations: readonly OvsdbOperation[], table: string, name: string) {
  return operations.find(
    (op) => op.op === "insert" && op.table === table && (op.row as { name?: string }).name === name,
  ) as { "uuid-name": string; row: Record<string, unknown> } | undefined;
}

describe("ovsOperations", () => {
  const create: OvsChange[] = [
    ovsChange.addBridge("br0", { datapath: "netdev", mtu: 1400, mac: "02:00:00:00:00:01" }),
    ovsChange.addPort("br0", "p1", { tag: 10, internal: true }),
    ovsChange.addPort("br0", "vi100", { internal: false }),
  ];

  it("creates a bridge with its own internal port and its ports in one go", () => {
    const operations = ovsOperations(create, noUuids);
    expect(referencesBeforeDefinitions(operations)).toEqual([]);
    const bridge = inserted(operations, "Bridge", "br0");
    if (!bridge) throw new Error("no Bridge insert");
    expect(bridge.row).toMatchObject({
      datapath_type: "netdev",
      external_ids: owner,
      other_config: ["map", [["hwaddr", "02:00:00:00:00:01"]]],
    });
    const ports = (bridge.row.ports as [string, [string, string][]])[1].map(([, name]) => name);
    expect(ports).toEqual(
      ["br0", "p1", "vi100"].map((name) => inserted(operations, "Port", name)?.["uuid-name"]),
    );
    expect(inserted(operations, "Interface", "br0")?.row).toMatchObject({
      type: "internal",
      mtu_request: 1400,
    });
    expect(inserted(operations, "Port", "p1")?.row).toMatchObject({ tag: 10, external_ids: owner });
    expect(inserted(operations, "Interface", "p1")?.row.type).toBe("internal");
    expect(inserted(operations, "Interface", "vi100")?.row).toEqual({ name: "vi100", type: "" });
    // The new bridge is hung on the root row, or OVSDB would collect it at once.
    expect(operations).toContainEqual({
      op: "mutate",
      table: "Open_vSwitch",
      where: [],
      mutations: [["bridges", "insert", ["set", [["named-uuid", bridge["uuid-name"]]]]]],
    });
  });

  it("adds a port to an existing bridge by reference, without touching its other ports", () => {
    const operations = ovsOperations([ovsChange.addPort("br0", "p2", { internal: true })], noUuids);
    const port = inserted(operations, "Port", "p2")?.["uuid-name"];
    expect(operations.at(-1)).toEqual({
      op: "mutate",
      table: "Bridge",
      where: [["name", "==", "br0"]],
      mutations: [["ports", "insert", ["set", [["named-uuid", port]]]]],
    });
    expect(operations.some((op) => op.op === "update")).toBe(false);
  });

  it("removes bridges and ports by uuid, and leaves out the ones already gone", () => {
    const uuids = {
      bridges: new Map([["old", "b-uuid"]]),
      ports: new Map([["p9", "p-uuid"]]),
    };
    const operations = ovsOperations(
      [
        ovsChange.removeBridge("old", { datapath: "netdev", ports: [] }),
        ovsChange.removeBridge("vanished", { datapath: "netdev", ports: [] }),
        ovsChange.removePort("br0", { name: "p9", type: "", owned: true }),
        ovsChange.removePort("br0", { name: "p8", type: "", owned: true }),
      ],
      uuids,
    );
    expect(operations).toEqual([
      {
        op: "mutate",
        table: "Open_vSwitch",
        where: [],
        mutations: [["bridges", "delete", ["set", [["uuid", "b-uuid"]]]]],
      },
      {
        op: "mutate",
        table: "Bridge",
        where: [["name", "==", "br0"]],
        mutations: [["ports", "delete", ["set", [["uuid", "p-uuid"]]]]],
      },
    ]);
  });

  it("moves a port from another bridge with its rows, clearing a tag the file does not give", () => {
    const operations = ovsOperations(
      [ovsChange.addPort("br1", "p1", { internal: true, from: "br0" })],
      { bridges: new Map(), ports: new Map([["p1", "p1-uuid"]]) },
    );
    expect(operations.filter((op) => op.op === "insert")).toEqual([]);
    expect(operations).toContainEqual({
      op: "mutate",
      table: "Bridge",
      where: [["name", "==", "br0"]],
      mutations: [["ports", "delete", ["set", [["uuid", "p1-uuid"]]]]],
    });
    expect(operations).toContainEqual({
      op: "mutate",
      table: "Bridge",
      where: [["name", "==", "br1"]],
      mutations: [["ports", "insert", ["set", [["uuid", "p1-uuid"]]]]],
    });
    expect(operations).toContainEqual({
      op: "update",
      table: "Port",
      where: [["name", "==", "p1"]],
      row: { tag: ["set", []] },
    });
    // The removal comes first: until then the port is on two bridges.
    expect(operations[0]?.mutations).toEqual([["ports", "delete", ["set", [["uuid", "p1-uuid"]]]]]);
    expect(() =>
      ovsOperations([ovsChange.addPort("br1", "p1", { internal: true, from: "br0" })], noUuids),
    ).toThrow(/no longer on bridge br0/);
  });

  it("sets and clears fields of existing rows", () => {
    const operations = ovsOperations(
      [
        ovsChange.setBridge("br0", "datapath", "system", "netdev"),
        ovsChange.setBridge("br0", "mac", "02:00:00:00:00:01", "02:00:00:00:00:02"),
        ovsChange.setBridge("br0", "mtu", 1500, 1400),
        ovsChange.setPort("br0", "p1", "tag", 20, undefined),
        ovsChange.setPort("br0", "p1", "internal", false, true),
        ovsChange.setPort("br0", "p1", "mac", "02:00:00:00:00:03", undefined),
      ],
      noUuids,
    );
    const where = (name: string) => [["name", "==", name]];
    expect(operations).toEqual([
      { op: "update", table: "Bridge", where: where("br0"), row: { datapath_type: "netdev" } },
      {
        op: "mutate",
        table: "Bridge",
        where: where("br0"),
        mutations: [
          ["other_config", "delete", ["set", ["hwaddr"]]],
          ["other_config", "insert", ["map", [["hwaddr", "02:00:00:00:00:02"]]]],
        ],
      },
      { op: "update", table: "Interface", where: where("br0"), row: { mtu_request: 1400 } },
      { op: "update", table: "Port", where: where("p1"), row: { tag: ["set", []] } },
      { op: "update", table: "Interface", where: where("p1"), row: { type: "internal" } },
      { op: "update", table: "Interface", where: where("p1"), row: { mac: ["set", []] } },
    ]);
  });

  it("turns every fixture's OVS action into operations whose references hold", () => {
    const root = join(import.meta.dirname, "fixtures");
    const actions = readdirSync(root).flatMap(
      (folder) =>
        JSON.parse(readFileSync(join(root, folder, "actions.json"), "utf8")) as NetworkAction[],
    );
    const ovs = actions.filter((action) => action.resource === "ovs-db");
    expect(ovs.length).toBeGreaterThanOrEqual(2);
    for (const action of ovs) {
      if (action.kind !== "modify") throw new Error("the OVS database is always modified");
      const all = new Map(
        action.changes.flatMap((c) => [
          [c.bridge, "u"],
          ...(c.table === "port" ? [[c.port, "u"] as const] : []),
        ]),
      );
      const operations = ovsOperations(action.changes, { bridges: all, ports: all });
      expect(operations.length).toBeGreaterThan(0);
      expect(referencesBeforeDefinitions(operations)).toEqual([]);
    }
  });
});

describe("parseOvsRows", () => {
  const uuid = (id: string) => ["uuid", id];
  it("gives each bridge its ports (not its own), their interfaces and who owns them", () => {
    const bridges = parseOvsRows({
      Bridge: [
        {
          _uuid: uuid("b0"),
          name: "br0",
          ports: ["set", [uuid("p0"), uuid("p1"), uuid("p2")]],
          external_ids: owner,
          datapath_type: "netdev",
          other_config: ["map", [["hwaddr", "02:AA:00:00:00:01"]]],
        },
      ],
      Port: [
        {
          _uuid: uuid("p0"),
          name: "br0",
          interfaces: uuid("i0"),
          tag: ["set", []],
          external_ids: ["map", []],
        },
        { _uuid: uuid("p1"), name: "zeta", interfaces: uuid("i1"), tag: 10, external_ids: owner },
        {
          _uuid: uuid("p2"),
          name: "alpha",
          interfaces: uuid("i2"),
          tag: ["set", []],
          external_ids: [
            "map",
            [
              ["op-managed", "true"],
              ["op-plugin", "lxc"],
            ],
          ],
        },
      ],
      Interface: [
        {
          _uuid: uuid("i0"),
          name: "br0",
          type: "internal",
          mtu_request: 1400,
          mac: ["set", []],
          error: ["set", []],
        },
        {
          _uuid: uuid("i1"),
          name: "zeta",
          type: "internal",
          mtu_request: ["set", []],
          mac: "02:BB:00:00:00:02",
          error: ["set", []],
        },
        {
          _uuid: uuid("i2"),
          name: "alpha",
          type: "",
          mtu_request: ["set", []],
          mac: ["set", []],
          error: "could not open network device alpha (No such device)",
        },
      ],
    });
    expect(bridges).toEqual([
      {
        name: "br0",
        datapath: "netdev",
        owned: true,
        mtu: 1400,
        mac: "02:aa:00:00:00:01",
        ports: [
          {
            name: "alpha",
            type: "",
            owned: false,
            error: "could not open network device alpha (No such device)",
          },
          { name: "zeta", type: "internal", owned: true, tag: 10, mac: "02:bb:00:00:00:02" },
        ],
      },
    ]);
  });
});
