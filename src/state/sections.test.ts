import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { createRegistry, type PluginManifest } from "../registry.js";
import { onlyPlugins } from "./sections.js";

// Manifests only: nothing is loaded, and the schemas are said to exist.
const manifest = (name: string, order: number, aliases?: string[]): PluginManifest => ({
  name,
  order,
  schema: name,
  ...(aliases === undefined ? {} : { aliases }),
  load: () => Promise.reject(new Error("not loaded in this test")),
});
const registry = createRegistry(
  [manifest("network", 1, ["net"]), manifest("lxc", 2), manifest("nftables", 3)],
  () => true,
);

describe("onlyPlugins", () => {
  const file = {
    version: 1,
    plugins: { net: { interfaces: [] }, lxc: { containers: [] }, nftables: { tables: [] } },
  };

  it("keeps the named plugins' sections, by name or alias, and the rest of the file", () => {
    expect(onlyPlugins(file, ["network", "nftables"], registry)).toEqual({
      version: 1,
      plugins: { net: { interfaces: [] }, nftables: { tables: [] } },
    });
    expect(onlyPlugins(file, ["lxc"], registry)).toEqual({
      version: 1,
      plugins: { lxc: { containers: [] } },
    });
    // The caller's document is left as it was.
    expect(Object.keys(file.plugins)).toEqual(["net", "lxc", "nftables"]);
  });

  it("keeps a section no plugin has, so that the schemas still refuse it", () => {
    const odd = { version: 1, plugins: { firewall: {}, lxc: {} } };
    expect(onlyPlugins(odd, ["network"], registry)).toEqual({
      version: 1,
      plugins: { firewall: {} },
    });
  });

  it("refuses an unknown plugin name, naming it and the known ones", () => {
    let thrown: unknown;
    try {
      onlyPlugins(file, ["network", "firewall"], registry);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(OpError);
    expect((thrown as OpError).message).toBe("--plugin firewall: unknown plugin");
    expect((thrown as OpError).hint).toBe("op knows: network, lxc, nftables");
  });

  it("leaves a document without a plugins object to the schemas", () => {
    expect(onlyPlugins([1], ["lxc"], registry)).toEqual([1]);
    expect(onlyPlugins({ plugins: [] }, ["lxc"], registry)).toEqual({ plugins: [] });
  });
});
