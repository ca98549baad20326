import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { createRegistry, type PluginManifest } from "../registry.js";
import { pluginScope } from "./sections.js";

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

describe("pluginScope", () => {
  it("gives the plugins' own names, for names or aliases, once each", () => {
    expect(pluginScope(["net", "nftables", "network"], registry)).toEqual(["network", "nftables"]);
    expect(pluginScope(["lxc"], registry)).toEqual(["lxc"]);
  });

  it.each(["firewall", "", "$(reboot)", "net;lxc"])(
    "refuses the unknown plugin %j, naming it and the known ones",
    (name) => {
      let thrown: unknown;
      try {
        pluginScope(["network", name], registry);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(OpError);
      expect((thrown as OpError).message).toBe(`--plugin ${name}: unknown plugin`);
      expect((thrown as OpError).hint).toBe("op knows: network, lxc, nftables");
    },
  );
});
