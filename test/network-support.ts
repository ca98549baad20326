/**
 * Shared set-up of the network system tests: throw-away namespaces, a Ctx on the real runner,
 * and one reconcile run through the real engine (plan → apply → verify) with a ledger that
 * only keeps its records in memory (the ledger itself is tested elsewhere).
 */
import { randomBytes } from "node:crypto";
import { networkPlugin } from "../plugins/network/index.js";
import type { NetworkAction } from "../plugins/network/types.js";
import { verifyConverged } from "../src/engine/reconcile.js";
import { createRunner, type Runner } from "../src/exec.js";
import { createOvsHost, type OvsHostOptions, ovsOptions } from "../src/host/ovs.js";
import type { Action, Ctx, Plugin } from "../src/plugin.js";
import { applyAndVerify, planSection, quietCtx, type RecordedStep } from "./support/engine.js";

export const host = createRunner();

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString("hex")}`;
}

export async function createNetns(purpose: string): Promise<string> {
  const name = uniqueName(`opt-${purpose}-`);
  await host.run("ip", ["netns", "add", name]);
  return name;
}

export async function deleteNetns(name: string): Promise<void> {
  await host.run("ip", ["netns", "del", name], { check: false });
}

/** A ctx on `exec`; `ovs` replaces the host's Open vSwitch (another socket, a request counter). */
export function ctxFor(exec: Runner, allowUplink = false, ovs?: Partial<OvsHostOptions>): Ctx {
  const ctx = quietCtx({ exec, options: { allowUplink } });
  if (ovs === undefined) return ctx;
  const options = { ...ovsOptions(ctx.settings), ...ovs };
  return { ...ctx, host: { ...ctx.host, ovs: createOvsHost(options, ctx.host.sys) } };
}

export interface RunResult {
  planned: Action[];
  remaining: Action[];
  failed: number;
  ledger: RecordedStep[];
}

/** `op apply` in-process: plan, apply through the engine's DAG, verify. */
export async function reconcile(
  section: unknown,
  ctx: Ctx,
  options: {
    key?: string;
    apply?: boolean;
    /** On the host: refuse to apply a plan that touches anything not named with this prefix. */
    onlyPrefix?: string;
  } = {},
): Promise<RunResult> {
  const plugin = networkPlugin as Plugin;
  const planned = await planSection(plugin, section, ctx, options.key);
  if (options.onlyPrefix !== undefined) assertOnlyTouches(planned.actions, options.onlyPrefix);
  if (options.apply === false)
    return { planned: planned.actions, remaining: [], failed: 0, ledger: [] };
  const run = await applyAndVerify(planned, ctx, 16);
  // These tests look at what is left even after a failure (verify runs only after success).
  const failedSome = run.report.failed > 0 || run.report.skipped > 0;
  const remaining = failedSome ? await verifyConverged(planned, ctx) : run.remaining;
  return { planned: planned.actions, remaining, failed: run.report.failed, ledger: run.records };
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
