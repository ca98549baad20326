/**
 * Adoption of containers (src/plugin.ts Adoption), beyond the fixture adopt-hand-launched: the
 * entry's `adopt` reaches the desired container, and a container with a local device of a type
 * a state file cannot express is refused at its entry instead of being adopted without it.
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { diffLxc } from "./diff.js";
import { liveContainer } from "./lxc.testing.js";
import { prepareLxc } from "./prepare.js";
import type { LxcLive, LxcSection } from "./types.js";

const ctx = {
  log: { debug() {}, info() {}, warn() {} },
  cacheDir: undefined,
} as unknown as Ctx;
const env = { defaultImage: "op-test/busybox" };
const hostWith = (devices: Record<string, Record<string, string>>): LxcLive => ({
  containers: [liveContainer("web", { managed: false, config: {}, devices })],
  bridges: {},
  aliases: { "op-test/busybox": "aa" },
});
const section = (adopt?: boolean): LxcSection => ({
  containers: [{ id: "web", ...(adopt === undefined ? {} : { adopt }) }],
});

describe("adopting containers", () => {
  it("plans the adoption at the entry, allowed only when the entry says adopt: true", async () => {
    const live = hostWith({ root: { type: "disk", path: "/", pool: "default" } });
    for (const adopt of [undefined, true]) {
      const actions = diffLxc(await prepareLxc(section(adopt), live, ctx, env), live);
      expect(actions.map((a) => [a.kind, a.id, a.adopt])).toEqual([
        ["modify", "web", { path: "/plugins/lxc/containers/0", allowed: adopt === true }],
      ]);
    }
  });

  it("cannot adopt a container with a device kind op does not model, and says which and where", async () => {
    const live = hostWith({ gpu0: { type: "gpu", gputype: "physical" } });
    const error = await prepareLxc(section(true), live, ctx, env).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).details).toEqual([
      '/plugins/lxc/containers/0: container web exists, op did not create it, and its device "gpu0" is of type gpu, which a state file cannot express, so op cannot adopt it (adopting would remove the device); remove the device by hand, or leave the container out of the file',
    ]);
  });
});
