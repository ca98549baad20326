import { describe, expect, it } from "vitest";
import { warmUp } from "../src/boot/warmup.js";
import type { Ctx } from "../src/plugin.js";
import { createRegistry } from "../src/registry.js";
import { registry } from "./registry.js";

describe("the snapshot's warm-up", () => {
  // It compiles what a plan runs only if it gets through validation, prepare and diff.
  it("plans creates, modifies and deletes from the plugins' fixtures without error", async () => {
    const kinds = new Set((await warmUp(registry)).map((action) => action.kind));
    expect([...kinds].sort()).toEqual(["create", "delete", "modify"]);
  });

  it("plans the network fixture from the recorded host, read by the plugin's own query", async () => {
    const [network] = registry.manifests;
    if (network?.name !== "network") throw new Error("no network plugin first in the registry");
    const actions = await warmUp(createRegistry([network]));
    // 198.18.11.1/24 exists only in the recording (warm-up-host.json), never in a fixture file.
    const br0 = actions.find((action) => action.id === "br0" && action.kind === "modify");
    expect(br0?.kind === "modify" ? br0.changes : []).toContainEqual(
      expect.objectContaining({ before: "198.18.11.1/24" }),
    );
  });

  it("refuses a command the recording does not hold", async () => {
    const [network] = registry.manifests;
    if (network?.warmUp === undefined) throw new Error("no network warm-up");
    const fixtures = await network.warmUp();
    const unrecorded = createRegistry([
      {
        ...network,
        warmUp: async () =>
          fixtures.map((fixture) =>
            "host" in fixture ? { ...fixture, host: { ...fixture.host, commands: [] } } : fixture,
          ),
      },
    ]);
    await expect(warmUp(unrecorded)).rejects.toThrow(/warm-up tried to run ip .*not recorded/);
  });

  it("refuses a side effect: a plugin whose prepare runs a process fails the warm-up", async () => {
    const [network] = registry.manifests;
    const plugin = await network?.load();
    if (network === undefined || plugin === undefined) throw new Error("no network plugin");
    const noisy = createRegistry([
      {
        ...network,
        load: async () => ({
          ...plugin,
          normalise: async (_section: unknown, ctx: Ctx) => ctx.exec.run("ip", ["link"]),
        }),
      },
    ]);
    await expect(warmUp(noisy)).rejects.toThrow(/warm-up tried to run ip/);
  });
});
