/**
 * What the lxc plugin's unit tests share: a container as the query gives it, and a section's
 * plan, or its problems, on a hand-written live state (no host is read).
 */
import { expect } from "vitest";
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { diffLxc } from "./diff.js";
import { prepareLxc } from "./prepare.js";
import type { LiveContainer, LxcLive, LxcSection } from "./types.js";

/** A stopped container op created from `op-test/busybox`, with `fields` over it. */
export function liveContainer(name: string, fields: Partial<LiveContainer> = {}): LiveContainer {
  return {
    name,
    project: "default",
    managed: true,
    status: "stopped",
    image: "op-test/busybox",
    profiles: ["default"],
    config: { "user.op.managed": "true", "user.op.image": "op-test/busybox" },
    devices: {},
    put: {
      architecture: "x86_64",
      ephemeral: false,
      stateful: false,
      description: "",
      volatile: {},
    },
    addresses: [],
    ...fields,
  };
}

/** A run's context that logs nothing and has no cache. */
export const quietCtx = {
  log: { debug() {}, info() {}, warn() {} },
  cacheDir: undefined,
} as unknown as Ctx;

/** The plan of `section` against `live`. */
export async function planOf(section: LxcSection, live: LxcLive) {
  return diffLxc(await prepareLxc(section, live, quietCtx), live);
}

/** The problems prepare refuses `section` with (it must refuse it). */
export async function problemsOf(section: LxcSection, live: LxcLive): Promise<readonly string[]> {
  const error = await prepareLxc(section, live, quietCtx).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return (error as OpError).details;
}
