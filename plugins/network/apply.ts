import { type Action, type Ctx, type FieldChange, unreachable } from "../../src/plugin.js";
import { type IpLine, ipBatcher } from "./batch.js";
import { type LinkCreate, ovsActionId } from "./diff.js";
import { applyOvs, type OvsConfig } from "./ovs.js";
import type { DesiredLink, DesiredRoute, LiveLink, LiveRoute } from "./types.js";
import { ovsTypes } from "./types.js";

const gone = /Cannot find device|No such device|does not exist/;
const alreadyThere = /File exists|Address already assigned/;
const notThere = /Cannot assign requested address|Address not found|No such process/;

export async function applyNetwork(action: Action, ctx: Ctx, ovsConfig: OvsConfig): Promise<void> {
  if (action.id === ovsActionId) {
    if (action.kind !== "modify") throw new Error(`bug: ${action.kind} of ${ovsActionId}`);
    await applyOvs(action.changes, ovsConfig);
    return;
  }
  await ipBatcher(ctx.exec).submit(action.id, linesOf(action));
}

/** The `ip -batch` lines of a link or route action (pure). */
export function linesOf(action: Action): IpLine[] {
  const route = action.id.startsWith("route:");
  switch (action.kind) {
    case "create":
      return route
        ? [addRoute(action.after as DesiredRoute)]
        : createLink(action.after as LinkCreate);
    case "modify":
      return route
        ? [deleteRoute(action.before as LiveRoute), addRoute(action.after as DesiredRoute)]
        : modifyLink(action.id, action.changes);
    case "delete":
      return route
        ? [deleteRoute(action.before as LiveRoute)]
        : [{ text: `link del ${(action.before as LiveLink).name}`, tolerate: gone }];
    default:
      return unreachable(action);
  }
}

function createLink({ link, ifalias, enrol }: LinkCreate): IpLine[] {
  const { name } = link;
  const lines: IpLine[] = [];
  const add = addCommand(link);
  if (add !== undefined) lines.push({ text: add });
  if (!ovsTypes.has(link.type)) {
    if (link.mtu !== undefined) lines.push({ text: `link set ${name} mtu ${link.mtu}` });
    if (link.mac !== undefined) lines.push({ text: `link set ${name} address ${link.mac}` });
  }
  if (ifalias !== undefined) lines.push({ text: `link set ${name} alias "${ifalias}"` });
  if (typeof link.master === "string")
    lines.push({ text: `link set ${name} master ${link.master}` });
  for (const port of enrol) lines.push({ text: `link set ${port} master ${name}` });
  if (link.state !== undefined) lines.push({ text: `link set ${name} ${link.state}` });
  lines.push(...addressLines(name, [...(link.ipv4 ?? []), ...(link.ipv6 ?? [])], []));
  return lines;
}

/** `link add …`, or undefined when something else makes the device (OVS, the veth's peer). */
function addCommand(link: DesiredLink): string | undefined {
  if (link.createdBy !== undefined) return undefined;
  switch (link.type) {
    case "linux-bridge":
      return `link add ${link.name} type bridge`;
    case "dummy":
      return `link add ${link.name} type dummy`;
    case "veth": {
      if (!link.veth) throw new Error(`bug: veth ${link.name} without a peer to create`);
      const netns = link.veth.netns === undefined ? "" : ` netns ${link.veth.netns}`;
      return `link add ${link.name} type veth peer name ${link.veth.peer}${netns}`;
    }
    case "macvlan": {
      if (!link.macvlan) throw new Error(`bug: macvlan ${link.name} without a base`);
      return `link add ${link.name} link ${link.macvlan.base} type macvlan mode ${link.macvlan.mode}`;
    }
    case "ovs-bridge":
    case "ovs-interface":
    case "ethernet":
      return undefined;
    default:
      return unreachable(link.type);
  }
}

function modifyLink(name: string, changes: readonly FieldChange[]): IpLine[] {
  const lines: IpLine[] = [];
  const removed: string[] = [];
  const added: string[] = [];
  let state: string | undefined;
  for (const change of changes) {
    switch (change.path) {
      case "master":
        lines.push({
          text:
            change.after === null
              ? `link set ${name} nomaster`
              : `link set ${name} master ${String(change.after)}`,
        });
        break;
      case "mtu":
        lines.push({ text: `link set ${name} mtu ${String(change.after)}` });
        break;
      case "mac":
        lines.push({ text: `link set ${name} address ${String(change.after)}` });
        break;
      case "alias":
        lines.push({ text: `link set ${name} alias "${String(change.after)}"` });
        break;
      case "macvlan.mode":
        lines.push({ text: `link set ${name} type macvlan mode ${String(change.after)}` });
        break;
      case "ports":
        lines.push({ text: `link set ${String(change.after)} master ${name}` });
        break;
      case "state":
        state = String(change.after);
        break;
      case "ipv4":
      case "ipv6":
        if (change.after === undefined) removed.push(String(change.before));
        else added.push(String(change.after));
        break;
      default:
        throw new Error(`bug: unknown link change ${change.path}`);
    }
  }
  // Down before addresses change; up before addresses are added.
  if (state !== undefined) lines.push({ text: `link set ${name} ${state}` });
  return [...lines, ...addressLines(name, added, removed)];
}

function addressLines(
  name: string,
  added: readonly string[],
  removed: readonly string[],
): IpLine[] {
  return [
    ...removed.map((address) => ({ text: `addr del ${address} dev ${name}`, tolerate: notThere })),
    ...added.map((address) => ({
      text: `addr add ${address} dev ${name}`,
      tolerate: alreadyThere,
    })),
  ];
}

function routeTarget(route: { to: string; family: 4 | 6 }): string {
  if (route.to !== "default") return route.to;
  return route.family === 6 ? "::/0" : "0.0.0.0/0";
}

function addRoute(route: DesiredRoute): IpLine {
  const via = route.via === undefined ? "" : ` via ${route.via}`;
  return {
    text: `route replace ${routeTarget(route)}${via} dev ${route.dev} metric ${route.metric} proto static`,
  };
}

function deleteRoute(route: LiveRoute): IpLine {
  return {
    text: `route del ${routeTarget(route)} dev ${route.dev} metric ${route.metric}`,
    tolerate: notThere,
  };
}
