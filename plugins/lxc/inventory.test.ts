import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OpError } from "../../src/errors.js";
import type { IncusClient } from "../../src/incus.js";
import { hostEntry, hostJson, listJson, renderInventory } from "./inventory.js";
import { inventoryHosts } from "./provision/inventory.js";
import type { LxcSection } from "./types.js";

const hosts = [
  hostEntry("web1", "198.18.0.11", "dev", ["web", "debian"], { http_port: 8080 }),
  hostEntry("db1", "198.18.0.12", "dev", ["db", "debian"], { backup: true, tags: ["a"] }),
  hostEntry("scratch", undefined, undefined, [], {}),
];

describe("op inventory", () => {
  it("answers the dynamic-inventory protocol: groups with hosts, and hostvars under _meta", () => {
    expect(listJson(hosts)).toEqual({
      _meta: {
        hostvars: {
          web1: { ansible_host: "198.18.0.11", ansible_user: "dev", http_port: 8080 },
          db1: { ansible_host: "198.18.0.12", ansible_user: "dev", backup: true, tags: ["a"] },
          scratch: {},
        },
      },
      all: { children: ["web", "debian", "db", "ungrouped"] },
      web: { hosts: ["web1"] },
      debian: { hosts: ["web1", "db1"] },
      db: { hosts: ["db1"] },
      ungrouped: { hosts: ["scratch"] },
    });
    expect(hostJson(hosts, "db1")).toEqual({
      ansible_host: "198.18.0.12",
      ansible_user: "dev",
      backup: true,
      tags: ["a"],
    });
    expect(hostJson(hosts, "gone")).toEqual({});
  });

  it("writes YAML with each host's variables once, under its first group", () => {
    expect(parse(renderInventory(hosts, "yaml"))).toEqual({
      all: {
        children: {
          web: {
            hosts: { web1: { ansible_host: "198.18.0.11", ansible_user: "dev", http_port: 8080 } },
          },
          debian: {
            hosts: {
              web1: null,
              db1: { ansible_host: "198.18.0.12", ansible_user: "dev", backup: true, tags: ["a"] },
            },
          },
          db: { hosts: { db1: null } },
          ungrouped: { hosts: { scratch: null } },
        },
      },
    });
  });

  it("writes INI with Python-literal values, and refuses a value INI cannot hold", () => {
    const simple = [
      hostEntry("web1", "198.18.0.11", "dev", ["web"], { motd: "hello world", on: false, n: 3 }),
    ];
    expect(renderInventory(simple, "ini")).toBe(
      '[web]\nweb1 ansible_host=198.18.0.11 ansible_user=dev motd="hello world" on=False n=3\n',
    );
    const error = (() => {
      try {
        renderInventory(hosts, "ini");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toBe(
      "host db1: tags cannot be written in an INI inventory (a list)",
    );
  });
});

describe("op inventory's hosts", () => {
  it("names a container outside the default project PROJECT_NAME, so the same name in two projects makes two hosts", async () => {
    // A scripted Incus: the one listing inventoryHosts asks for (no daemon is read here).
    const running = (address: string) => ({
      network: {
        eth0: { addresses: [{ family: "inet", scope: "global", address }] },
      },
    });
    const incus = {
      request: async () => [
        { name: "web", project: "default", type: "container", state: running("198.18.1.2") },
        { name: "web", project: "p1", type: "container", state: running("198.18.1.3") },
      ],
    } as unknown as IncusClient;
    const section: LxcSection = {
      containers: [
        { id: "web", image: "op-test/busybox" },
        { id: "web", project: "p1", image: "op-test/busybox" },
      ],
    };
    const hosts = await inventoryHosts(section, undefined, incus);
    expect(hosts.map((host) => [host.name, host.vars.ansible_host])).toEqual([
      ["web", "198.18.1.2"],
      ["p1_web", "198.18.1.3"],
    ]);
  });
});
