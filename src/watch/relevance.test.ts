/** Which hints start a watch run: those about what the file names, or about a plugin as a whole. */
import { describe, expect, it } from "vitest";
import { fakePlugin } from "../engine/testing.js";
import type { Plugin } from "../plugin.js";
import type { StateDocument } from "../state/validate.js";
import type { Hint } from "./hint.js";
import { concernsFile, declaredNames } from "./relevance.js";

// Plugins that declare what their section lists, as the real ones' `ignore.declared` do.
const declaring = (name: string, qualify?: (n: string) => string): Plugin => ({
  ...fakePlugin(name, []),
  ignore: {
    declared: (section) =>
      (section as { names: string[] }).names.map((n, i) => ({
        noun: "object",
        name: n,
        ...(qualify === undefined ? {} : { qualified: qualify(n) }),
        path: `/names/${i}`,
      })),
    without: (live) => live,
  },
});

const document: StateDocument = {
  version: 1,
  sections: new Map<string, unknown>([
    ["network", { names: ["br0", "ovsbr"] }],
    ["lxc", { names: ["ct1"] }],
    ["nftables", { names: ["filter"] }],
    ["sysctl", {}],
  ]),
  paths: new Map(),
};
const declared = declaredNames(document, [
  declaring("network"),
  declaring("lxc", (n) => `default/${n}`),
  declaring("nftables", (n) => `inet/${n}`),
  fakePlugin("sysctl", []),
]);
const hint = (plugin: string, id?: string, source = "ip"): Hint => ({
  plugin,
  source,
  what: "test",
  ...(id === undefined ? {} : { id }),
});

describe("concernsFile", () => {
  it("keeps hints about what the file names, by name or qualified name", () => {
    expect(concernsFile(hint("network", "br0"), declared)).toBe(true);
    expect(concernsFile(hint("lxc", "ct1", "incus"), declared)).toBe(true);
    expect(concernsFile(hint("nftables", "inet/filter", "nft"), declared)).toBe(true);
  });

  it("keeps a route's hint when the file names the link it goes over", () => {
    expect(concernsFile(hint("network", "198.18.0.0/24 dev br0"), declared)).toBe(true);
    expect(concernsFile(hint("network", "::/0 dev eth9"), declared)).toBe(false);
  });

  it("drops hints about objects the file does not name", () => {
    expect(concernsFile(hint("network", "veth1234"), declared)).toBe(false);
    expect(concernsFile(hint("network", "vi100"), declared)).toBe(false);
    expect(concernsFile(hint("lxc", "someone-elses", "incus"), declared)).toBe(false);
    expect(concernsFile(hint("nftables", "ip/filter", "nft"), declared)).toBe(false);
    expect(concernsFile(hint("network", "br0 dev"), declared)).toBe(false);
  });

  it("keeps plugin-wide hints, OVSDB's, and every hint of a plugin that cannot say what it declares", () => {
    expect(concernsFile(hint("lxc"), declared)).toBe(true);
    expect(concernsFile(hint("network", "Open vSwitch", "ovsdb"), declared)).toBe(true);
    expect(concernsFile(hint("sysctl", "net.ipv4.ip_forward"), declared)).toBe(true);
    expect(concernsFile(hint("other", "x"), declared)).toBe(true);
  });
});
