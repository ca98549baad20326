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
