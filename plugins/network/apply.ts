import { type Ctx, type FieldChange, unreachable } from "../../src/plugin.js";
import { type IpLine, ipBatcher, ipWord } from "./batch.js";
import { linkDeleter, linkDelLine } from "./link-delete.js";
import { applyOvs } from "./ovs.js";
import type { DesiredLink, DesiredRoute, LinkCreate, LiveRoute, NetworkAction } from "./types.js";
import { ovsTypes } from "./types.js";

const alreadyThere = /File exists|Address already assigned/;
const notThere = /Cannot assign requested address|Address not found|No such process/;

export async function applyNetwork(action: NetworkAction, ctx: Ctx): Promise<void> {
  if (action.resource === "ovs-db") {
    // The diff makes only modifies of the OVS database (one transaction of changes).
    if (action.kind !== "modify") throw new Error(`bug: ${action.kind} of ${action.id}`);
    await applyOvs(action.changes, ctx.host.ovs);
    return;
  }
  if (action.resource === "link" && action.kind === "delete") {
    // Deletes that come together share one link-group delete (link-delete.ts).
    await linkDeleter(ctx.exec, { log: ctx.log }).delete(action.id, action.before.name);
    return;
  }
  await ipBatcher(ctx.exec).submit(action.id, linesOf(action));
}

/** The `ip -batch` lines of a link or route action (pure). Names go after their keyword
 * (`dev`, `name`, `master`...), so that a link called `up` or `help` is read as a name. */
export function linesOf(action: Exclude<NetworkAction, { resource: "ovs-db" }>): IpLine[] {
  if (action.resource === "route") {
    switch (action.kind) {
      case "create":
        return [addRoute(action.after)];
      case "modify":
        return [deleteRoute(action.before), addRoute(action.after)];
      case "delete":
        return [deleteRoute(action.before)];
      default:
        return unreachable(action);
    }
  }
  switch (action.kind) {
    case "create":
      return createLink(action.after);
    case "modify":
      return modifyLink(action.after, action.changes);
    case "delete":
      return [linkDelLine(action.before.name)];
    default:
      return unreachable(action);
  }
}

/** `link set dev NAME …` */
function set(name: string, what: string): IpLine {
  return { text: `link set dev ${ipWord(name)} ${what}` };
}

function createLink({ link, ifalias, enrol, peerState }: LinkCreate): IpLine[] {
  const { name } = link;
  const lines: IpLine[] = [];
  const add = addCommand(link);
  if (add !== undefined) lines.push({ text: add });
  if (!ovsTypes.has(link.type)) {
    if (link.mtu !== undefined) lines.push(set(name, `mtu ${link.mtu}`));
    if (link.mac !== undefined) lines.push(set(name, `address ${ipWord(link.mac)}`));
  }
  if (ifalias !== undefined) lines.push(set(name, `alias ${ipWord(ifalias)}`));
  if (typeof link.master === "string") lines.push(set(name, `master ${ipWord(link.master)}`));
  for (const port of enrol) lines.push(set(port, `master ${ipWord(name)}`));
  if (link.state !== undefined) lines.push(set(name, link.state));
  if (peerState !== undefined && link.veth) lines.push(set(link.veth.peer, peerState));
  lines.push(...addressLines(name, [...(link.ipv4 ?? []), ...(link.ipv6 ?? [])], []));
  return lines;
}

/** `link add …`, or undefined when something else makes the device (OVS, the veth's peer). */
function addCommand(link: DesiredLink): string | undefined {
  if (link.createdBy !== undefined) return undefined;
  const name = ipWord(link.name);
  switch (link.type) {
    case "linux-bridge":
      return `link add name ${name} type bridge`;
    case "dummy":
      return `link add name ${name} type dummy`;
    case "veth": {
      if (!link.veth) throw new Error(`bug: veth ${link.name} without a peer to create`);
      const netns = link.veth.netns === undefined ? "" : ` netns ${ipWord(link.veth.netns)}`;
      return `link add name ${name} type veth peer name ${ipWord(link.veth.peer)}${netns}`;
    }
    case "macvlan": {
      if (!link.macvlan) throw new Error(`bug: macvlan ${link.name} without a base`);
      return `link add name ${name} link ${ipWord(link.macvlan.base)} type macvlan mode ${ipWord(link.macvlan.mode)}`;
    }
    case "ovs-bridge":
    case "ovs-interface":
    case "ethernet":
      return undefined;
    default:
      return unreachable(link.type);
  }
}

function modifyLink(link: DesiredLink, changes: readonly FieldChange[]): IpLine[] {
  const { name } = link;
  const lines: IpLine[] = [];
  const removed: string[] = [];
  const added: string[] = [];
  let state: string | undefined;
  let peerState: string | undefined;
  for (const change of changes) {
    const after = String(change.after);
    switch (change.path) {
      case "master":
        lines.push(set(name, change.after === null ? "nomaster" : `master ${ipWord(after)}`));
        break;
      case "mtu":
        lines.push(set(name, `mtu ${ipWord(after)}`));
        break;
      case "mac":
        lines.push(set(name, `address ${ipWord(after)}`));
        break;
      case "alias":
        lines.push(set(name, `alias ${ipWord(after)}`));
        break;
      case "macvlan.mode":
        lines.push(set(name, `type macvlan mode ${ipWord(after)}`));
        break;
      case "ports":
        // A port the file adds (after), or a foreign one op takes out of its bridge (before).
        lines.push(
          change.after === undefined
            ? set(String(change.before), "nomaster")
            : set(after, `master ${ipWord(name)}`),
        );
        break;
      case "state":
        state = after;
        break;
      case "peer.state":
        peerState = after;
        break;
      case "ipv4":
      case "ipv6":
        if (change.after === undefined) removed.push(String(change.before));
        else added.push(after);
        break;
      default:
        throw new Error(`bug: unknown link change ${change.path}`);
    }
  }
  // Down before addresses change; up before addresses are added.
  if (state === "up" || state === "down") lines.push(set(name, state));
  if ((peerState === "up" || peerState === "down") && link.veth)
    lines.push(set(link.veth.peer, peerState));
  return [...lines, ...addressLines(name, added, removed)];
}

function addressLines(
  name: string,
  added: readonly string[],
  removed: readonly string[],
): IpLine[] {
  const dev = ipWord(name);
  return [
    ...removed.map((address) => ({
      text: `addr del ${ipWord(address)} dev ${dev}`,
      tolerate: notThere,
    })),
    ...added.map((address) => ({
      text: `addr add ${ipWord(address)} dev ${dev}`,
      tolerate: alreadyThere,
    })),
  ];
}

function routeTarget(route: { to: string; family: 4 | 6 }): string {
  if (route.to !== "default") return ipWord(route.to);
  return route.family === 6 ? "::/0" : "0.0.0.0/0";
}

/**
 * `route add`, never `route replace`: a route of the same key that op did not add (the host's
 * default route, say) makes the line fail with "File exists" instead of being overwritten.
 * op rewrites only its own routes, by deleting them first (a modify).
 */
function addRoute(route: DesiredRoute): IpLine {
  const via = route.via === undefined ? "" : ` via ${ipWord(route.via)}`;
  return {
    text: `route add ${routeTarget(route)}${via} dev ${ipWord(route.dev)} metric ${route.metric} proto static`,
  };
}

function deleteRoute(route: LiveRoute): IpLine {
  return {
    // proto static: only ever op's own route, even if the host added one of the same key.
    text: `route del ${routeTarget(route)} dev ${ipWord(route.dev)} metric ${route.metric} proto static`,
    tolerate: notThere,
  };
}
