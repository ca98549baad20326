import { expect, it } from "vitest";
import { loadPlugins, pluginEntries } from "./registry.js";

it("describes each plugin by the name and aliases the plugin itself declares", async () => {
  const plugins = await loadPlugins();
  expect(plugins.map((p) => p.name)).toEqual(["network", "lxc", "nftables"]);
  for (const [i, plugin] of plugins.entries()) {
    expect(pluginEntries[i]?.name).toBe(plugin.name);
    expect(pluginEntries[i]?.aliases ?? []).toEqual(plugin.aliases ?? []);
  }
});

it("loads only the plugins asked for, still in create order", async () => {
  expect((await loadPlugins(["nftables", "network"])).map((p) => p.name)).toEqual([
    "network",
    "nftables",
  ]);
});
