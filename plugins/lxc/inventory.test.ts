import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OpError } from "../../src/errors.js";
import { hostEntry, hostJson, listJson, renderInventory } from "./inventory.js";

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
