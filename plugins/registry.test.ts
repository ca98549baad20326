import { describe, expect, it } from "vitest";
import { createRegistry, type PluginManifest } from "../src/registry.js";
import { registry } from "./registry.js";

describe("the plugin registry", () => {
  it("describes each plugin by the name and aliases the plugin itself declares", async () => {
    const plugins = await registry.load();
    expect(plugins.map((p) => p.name)).toEqual(["network", "lxc", "nftables", "sysctl"]);
    for (const [i, plugin] of plugins.entries()) {
      expect(registry.manifests[i]?.name).toBe(plugin.name);
      expect(registry.manifests[i]?.aliases ?? []).toEqual(plugin.aliases ?? []);
    }
  });

  it("loads only the plugins asked for, still in create order", async () => {
    expect((await registry.load(["nftables", "network"])).map((p) => p.name)).toEqual([
      "network",
      "nftables",
    ]);
  });

  it("finds a plugin by its name or an alias", () => {
    expect(registry.named("net")?.name).toBe("network");
    expect(registry.named("nftables")?.name).toBe("nftables");
    expect(registry.named("firewall")).toBeUndefined();
  });

  // A plugin that is not in the repository (so it has no compiled schema).
  const example = (overrides: Partial<PluginManifest> = {}): PluginManifest => ({
    name: "example",
    order: 5,
    schema: "example",
    load: () => Promise.reject(new Error("not loaded in this test")),
    ...overrides,
  });

  it("refuses a plugin whose schema was not compiled", () => {
    expect(() => createRegistry([example()])).toThrow(
      "bug: plugin example has no compiled schema: add schemas/example.schema.json and run node scripts/gen.mjs",
    );
    // The same manifest with a schema is accepted: the schema is what was missing.
    expect(createRegistry([example()], (schema) => schema === "example").manifests).toHaveLength(1);
  });

  it("refuses a schema not named after its plugin, and a name given twice", () => {
    expect(() => createRegistry([example({ schema: "network" })])).toThrow(/must be named after/);
    expect(() =>
      createRegistry([...registry.manifests, example({ name: "lxc", schema: "lxc" })]),
    ).toThrow('bug: plugin name "lxc" is registered twice');
    expect(() =>
      createRegistry([example({ aliases: ["net"] }), ...registry.manifests], () => true),
    ).toThrow('bug: plugin name "net" is registered twice');
  });

  it("orders plugins by their manifests' create order, not by their place in the list", () => {
    const [network, lxc, nftables, sysctl] = registry.manifests;
    if (!network || !lxc || !nftables || !sysctl) throw new Error("four plugins expected");
    expect(createRegistry([sysctl, nftables, lxc, network]).manifests.map((m) => m.name)).toEqual([
      "network",
      "lxc",
      "nftables",
      "sysctl",
    ]);
  });
});
