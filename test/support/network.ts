/**
 * Shared set-up of the network system tests: a Ctx on the real runner, the network plugin's
 * reconcile (test/support/engine.ts) and readers of the links `ip` shows. Their namespaces
 * come from test/support/netns.ts.
 */
import { randomBytes } from "node:crypto";
import { networkPlugin } from "../../plugins/network/index.js";
import type { NetworkAction } from "../../plugins/network/types.js";
import { createRunner, type Runner } from "../../src/exec.js";
import { createOvsHost, type OvsHostOptions, ovsOptions } from "../../src/host/ovs.js";
import type { Action, Ctx, Plugin } from "../../src/plugin.js";
import { quietCtx, type Reconciled, reconcile as reconcileSection } from "./engine.js";
import { createNetns, type TestNetns } from "./netns.js";

export const host = createRunner();

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString("hex")}`;
}

/** A ctx on `exec`; `ovs` replaces the host's Open vSwitch (another socket, a request counter). */
export function ctxFor(exec: Runner, allowUplink = false, ovs?: Partial<OvsHostOptions>): Ctx {
  const ctx = quietCtx({ exec, options: { allowUplink } });
  if (ovs === undefined) return ctx;
  const options = { ...ovsOptions(ctx.settings), ...ovs };
  return { ...ctx, host: { ...ctx.host, ovs: createOvsHost(options, ctx.host.sys) } };
}

/** A namespace of the test's own (test/support/netns.ts), a runner and a ctx inside it. */
export function netnsWithCtx(purpose: string): { netns: TestNetns; exec: Runner; ctx: Ctx } {
  const netns = createNetns(purpose);
  const exec = createRunner({ netns: netns.name });
  return { netns, exec, ctx: ctxFor(exec) };
}

/** The network plugin's `reconcile` (test/support/engine.ts). */
export async function reconcile(
  section: unknown,
  ctx: Ctx,
  options: {
    key?: string;
    apply?: boolean;
    /** On the host: refuse to apply a plan that touches anything not named with this prefix. */
    onlyPrefix?: string;
  } = {},
): Promise<Reconciled> {
  const plugin = networkPlugin as Plugin;
  const { onlyPrefix, ...rest } = options;
  return reconcileSection(plugin, section, ctx, {
    ...rest,
    concurrency: 16,
    ...(onlyPrefix === undefined
      ? {}
      : { beforeApply: (actions) => assertOnlyTouches(actions, onlyPrefix) }),
  });
}

/** A safety net for tests on the host (OVS is host-wide): stop before touching foreign names. */
function assertOnlyTouches(actions: readonly Action[], prefix: string): void {
  // The network plugin's own plan, so its actions are the plugin's kinds.
  const names = (actions as readonly NetworkAction[]).flatMap((action): string[] => {
    if (action.resource === "link") return [action.id];
    if (action.resource === "route")
      return [action.kind === "delete" ? action.before.dev : action.after.dev];
    if (action.kind !== "modify") return [];
    return action.changes.flatMap((c) => (c.table === "port" ? [c.bridge, c.port] : [c.bridge]));
  });
  const foreign = names.filter((name) => !name.startsWith(prefix) && !/^vi\d+$/.test(name));
  if (foreign.length > 0)
    throw new Error(`test plan would touch ${foreign.join(", ")}: not applying it`);
}

/** `ip -j -d addr show` in a namespace, by link name. */
export async function links(exec: Runner): Promise<Map<string, IpLinkJson>> {
  const { stdout } = await exec.run("ip", ["-j", "-d", "addr", "show"]);
  return new Map((JSON.parse(stdout) as IpLinkJson[]).map((link) => [link.ifname, link]));
}

export interface IpLinkJson {
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  address: string;
  linkinfo?: { info_kind?: string };
  addr_info: { family: string; local: string; prefixlen: number }[];
}

export function addressesOf(link: IpLinkJson | undefined, family = "inet"): string[] {
  return (link?.addr_info ?? [])
    .filter((a) => a.family === family)
    .map((a) => `${a.local}/${a.prefixlen}`);
}
