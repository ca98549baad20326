/**
 * The `wait` of a container op has just created or started: the action returns only when the
 * container is ready (plugins/lxc/ready.ts). The engine runs a wave's actions together, so the
 * containers of one run wait at the same time.
 */
import type { Ctx } from "../../../src/plugin.js";
import { incusOf } from "../query.js";
import { type Readiness, waitReady } from "../ready.js";
import type { DesiredContainer } from "../types.js";

export async function waitFor(container: DesiredContainer, ctx: Ctx): Promise<Readiness> {
  const wait = container.provision?.wait;
  if (wait === undefined || !container.running) return {};
  const readiness = await waitReady(container, wait, {
    incus: incusOf(ctx),
    net: ctx.host.net,
    now: () => ctx.clock().getTime(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  });
  if (readiness.address !== undefined)
    ctx.log.debug(`container ${container.name} is ready at ${readiness.address}`);
  return readiness;
}
