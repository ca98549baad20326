/**
 * Pure: the actions that make the live links, OVS and routes match the desired state. One
 * action per link (id = its name), one per route (id: refs.ts routeId) and one for all OVS
 * changes (the `ovs-db` resource, one transaction). `needs` orders them: bridges before their ports, the
 * OVS transaction before its links' addresses, a veth before its declared peer, a base before
 * its macvlan, a link before its routes; deletes the other way round.
 */
import type { Adoption, FieldChange, ResourceRef } from "../../src/plugin.js";
import { ovsChange } from "./ovs-changes.js";
import { linkRef, ovsDatabaseRef, networkPluginName as plugin, routeId } from "./refs.js";
import {
  type DesiredLink,
  type DesiredOvsBridge,
  type LinkCreate,
  type LiveLink,
  type LiveOvsPort,
  type NetDesired,
  type NetLive,
  type NetworkAction,
  type NewOvsBridge,
  type OvsChange,
  ovsTypes,
  ownerMarker,
} from "./types.js";

export function diffNetwork(desired: NetDesired, live: NetLive): NetworkAction[] {
  const ovs = ovsActions(desired, live);
  return [...linkActions(desired, live, ovs.length > 0), ...ovs, ...routeActions(desired, live)];
}

function linkActions(desired: NetDesired, live: NetLive, hasOvsAction: boolean): NetworkAction[] {
  const liveBy = new Map(live.links.map((link) => [link.name, link]));
  const declared = new Map(desired.links.map((link) => [link.name, link]));
  const linuxBridges = new Set(
    desired.links.filter((l) => l.type === "linux-bridge").map((l) => l.name),
  );
  const actions: NetworkAction[] = [];

  // Links the file keeps: declared ones and the same-namespace peers of declared veths.
  const kept = new Set(declared.keys());
  for (const link of desired.links) {
    if (link.veth && link.veth.netns === undefined) kept.add(link.veth.peer);
    const peer = liveBy.get(link.name)?.peer;
    if (link.type === "veth" && peer !== undefined) kept.add(peer);
  }

  const deleted = new Set<string>();
  const deleteAction = (cur: LiveLink, reason: string, adopt?: Adoption): void => {
    deleted.add(cur.name);
    actions.push({
      kind: "delete",
      plugin,
      resource: "link",
      id: cur.name,
      before: cur,
      reason,
      ...(adopt === undefined ? {} : { adopt }),
    });
  };
  for (const name of desired.absent) {
    const cur = liveBy.get(name);
    if (cur === undefined || ovsTypes.has(cur.type)) continue;
    const adopt = cur.owned ? undefined : desired.entries[name];
    deleteAction(cur, adopt ? "ensure: absent (made outside op)" : "ensure: absent", adopt);
  }
  for (const cur of live.links) {
    if (!desired.prune) break;
    if (cur.owned && !kept.has(cur.name) && !deleted.has(cur.name) && !ovsTypes.has(cur.type)) {
      deleteAction(cur, "created by op, no longer in the file (prune)");
    }
  }
  // Deletes in reverse: a bridge after its ports, a base after its macvlans.
  for (const action of actions) {
    const dependents = live.links.filter(
      (other) =>
        deleted.has(other.name) && (other.master === action.id || other.base === action.id),
    );
    if (dependents.length > 0) action.needs = dependents.map((other) => linkRef(other.name));
  }

  for (const link of desired.links) {
    const cur = liveBy.get(link.name);
    const isOvs = ovsTypes.has(link.type);
    const needs = needsOf(link, declared, hasOvsAction);
    const replace =
      cur?.owned &&
      !isOvs &&
      link.type !== "ethernet" &&
      (cur.type !== link.type ||
        (link.veth !== undefined &&
          (link.veth.netns === undefined ? cur.peer !== link.veth.peer : !cur.peerElsewhere)) ||
        (link.macvlan !== undefined && cur.base !== link.macvlan.base));
    if (cur === undefined || replace) {
      const enrol = (link.ports ?? []).filter((p) => !declared.has(p) && liveBy.has(p));
      const ifalias = aliasOf(link, !isOvs);
      const peerState = undeclaredPeer(link, declared) === undefined ? undefined : link.state;
      const after: LinkCreate = {
        link,
        ...(ifalias === undefined ? {} : { ifalias }),
        enrol,
        ...(peerState === undefined ? {} : { peerState }),
      };
      if (isOvs && !needsNetlinkWork(link)) continue;
      if (replace) deleteAction(cur, `replaced: ${describeReplace(link, cur)}`);
      actions.push({
        kind: "create",
        plugin,
        resource: "link",
        id: link.name,
        after,
        reason: replace
          ? "replaces the link of the same name (cannot change in place)"
          : `new ${link.type}`,
        ...(needs.length > 0 ? { needs } : {}),
      });
      continue;
    }
    // Adopting makes the link op's (its marker in ifalias) and the file its whole truth, in
    // the same step: it is compared as if op owned it already.
    // The peer of a veth op created came with it: op's as much as the end that carries the mark.
    const pairedWithOwn = cur.peer !== undefined && liveBy.get(cur.peer)?.owned === true;
    const adopt = cur.owned || isOvs || pairedWithOwn ? undefined : desired.entries[link.name];
    const context = { liveBy, declared, linuxBridges, deleted };
    // Not adopted and already as the file has it: nothing would change, so nothing is taken
    // over (an `op export --all` file applies back as no changes); adopted, it gets op's mark.
    if (adopt !== undefined && !adopt.allowed && linkChanges(link, cur, context).length === 0)
      continue;
    const view = adopt === undefined ? cur : { ...cur, owned: true };
    const changes = linkChanges(link, view, context);
    if (changes.length === 0) continue;
    const reason = changes.map(describeChange).join(", ");
    actions.push({
      kind: "modify",
      plugin,
      resource: "link",
      id: link.name,
      before: cur,
      after: link,
      changes,
      reason: adopt === undefined ? reason : `made outside op: ${reason}`,
      ...(needs.length > 0 ? { needs } : {}),
      ...(adopt === undefined ? {} : { adopt }),
    });
  }
  return actions;
}

function needsOf(
  link: DesiredLink,
  declared: ReadonlyMap<string, DesiredLink>,
  hasOvsAction: boolean,
): ResourceRef[] {
  const links: string[] = [];
  if (typeof link.master === "string") links.push(link.master);
  if (link.createdBy !== undefined) links.push(link.createdBy);
  if (link.macvlan && declared.has(link.macvlan.base)) links.push(link.macvlan.base);
  const needs = links.filter((name) => name !== link.name).map(linkRef);
  return ovsTypes.has(link.type) && hasOvsAction ? [...needs, ovsDatabaseRef] : needs;
}

/** The peer of a veth op creates in this namespace when the file does not declare it itself. */
function undeclaredPeer(
  link: DesiredLink,
  declared: ReadonlyMap<string, DesiredLink>,
): string | undefined {
  if (link.veth === undefined || link.veth.netns !== undefined) return undefined;
  return declared.has(link.veth.peer) ? undefined : link.veth.peer;
}

/** An OVS link's device is made by the OVS transaction; netlink only adds state, alias and addresses. */
function needsNetlinkWork(link: DesiredLink): boolean {
  return (
    link.state === "up" ||
    (link.ipv4?.length ?? 0) > 0 ||
    (link.ipv6?.length ?? 0) > 0 ||
    link.alias !== undefined
  );
}

/** The ifalias a link should carry: op's marker on links op owns, then the user's text. */
function aliasOf(link: DesiredLink, owned: boolean): string | undefined {
  if (!owned) return link.alias;
  return link.alias === undefined ? ownerMarker : `${ownerMarker} ${link.alias}`;
}

/** What linkChanges looks at besides the link: the host's links and the run's other links. */
interface LinkContext {
  liveBy: ReadonlyMap<string, LiveLink>;
  declared: ReadonlyMap<string, DesiredLink>;
  linuxBridges: ReadonlySet<string>;
  /** Links this run deletes. */
  deleted: ReadonlySet<string>;
}

function linkChanges(
  link: DesiredLink,
  cur: LiveLink,
  { liveBy, declared, linuxBridges, deleted }: LinkContext,
): FieldChange[] {
  const isOvs = ovsTypes.has(link.type);
  const changes: FieldChange[] = [];
  const field = (path: string, before: unknown, after: unknown): void => {
    if (before !== after)
      changes.push({ path, ...(before === undefined ? {} : { before }), after });
  };
  if (!isOvs) {
    if (typeof link.master === "string") field("master", cur.master, link.master);
    else if (link.master === null && cur.master !== undefined && linuxBridges.has(cur.master)) {
      changes.push({ path: "master", before: cur.master, after: null });
    }
    if (link.mtu !== undefined) field("mtu", cur.mtu, link.mtu);
    if (link.mac !== undefined) field("mac", cur.mac, link.mac);
    if (link.macvlan && cur.mode !== link.macvlan.mode)
      field("macvlan.mode", cur.mode, link.macvlan.mode);
  }
  const ifalias = aliasOf(link, cur.owned && !isOvs);
  if (ifalias !== undefined) field("alias", cur.alias, ifalias);
  for (const port of link.ports ?? []) {
    const member = liveBy.get(port);
    if (!declared.has(port) && member && member.master !== link.name)
      changes.push({ path: "ports", after: port });
  }
  for (const port of foreignPorts(link, cur, liveBy, declared, deleted))
    changes.push({ path: "ports", before: port });
  if (link.state !== undefined) field("state", cur.state, link.state);
  const peer = undeclaredPeer(link, declared);
  const peerLink = peer === undefined ? undefined : liveBy.get(peer);
  if (peerLink !== undefined && link.state !== undefined)
    field("peer.state", peerLink.state, link.state);
  for (const family of ["ipv4", "ipv6"] as const) {
    const want = link[family] ?? (link[family] === undefined && cur.owned ? [] : null);
    if (want === null) continue;
    for (const address of cur[family])
      if (!want.includes(address)) changes.push({ path: family, before: address });
    for (const address of want)
      if (!cur[family].includes(address)) changes.push({ path: family, after: address });
  }
  return changes;
}

/**
 * Links in a Linux bridge op created that the file does not put there: enslaved by hand (or by
 * another tool), they are drift unless the bridge says `exclusive_ports: false`. A link the file
 * declares is left to its own `master`; a container veth the file's lxc section puts on this
 * bridge is the guest's.
 */
function foreignPorts(
  link: DesiredLink,
  cur: LiveLink,
  liveBy: ReadonlyMap<string, LiveLink>,
  declared: ReadonlyMap<string, DesiredLink>,
  deleted: ReadonlySet<string>,
): string[] {
  if (link.type !== "linux-bridge" || !cur.owned || link.exclusivePorts === false) return [];
  // A port this run deletes leaves the bridge with it.
  const allowed = new Set([...(link.ports ?? []), ...(link.guestPorts ?? []), ...deleted]);
  return [...liveBy.values()]
    .filter((l) => l.master === link.name && !allowed.has(l.name) && !declared.has(l.name))
    .map((l) => l.name);
}

function describeChange(change: FieldChange): string {
  if (change.path === "ipv4" || change.path === "ipv6" || change.path === "ports") {
    return change.after === undefined ? `-${String(change.before)}` : `+${String(change.after)}`;
  }
  if (change.path === "master" && change.after === null) return `leave ${String(change.before)}`;
  return `${change.path} ${String(change.before ?? "-")} → ${String(change.after)}`;
}

function describeReplace(link: DesiredLink, cur: LiveLink): string {
  if (cur.type !== link.type) return `${cur.type} → ${link.type}`;
  if (link.veth) return `veth peer ${cur.peer ?? "(elsewhere)"} → ${link.veth.peer}`;
  return `macvlan base ${cur.base ?? "-"} → ${link.macvlan?.base ?? "-"}`;
}

function ovsActions(desired: NetDesired, live: NetLive): NetworkAction[] {
  if (!live.ovs.available) return [];
  const liveBridges = live.ovs.bridges;
  const liveBy = new Map(liveBridges.map((bridge) => [bridge.name, bridge]));
  const bridgeOfPort = new Map(
    liveBridges.flatMap((b) => b.ports.map((p) => [p.name, b.name] as const)),
  );
  const wanted = new Set(desired.ovs.map((bridge) => bridge.name));
  const wantedPorts = new Set(desired.ovs.flatMap((bridge) => bridge.ports.map((p) => p.name)));
  // Ports the file marks absent, and ports op put there that the file no longer lists: in a
  // bridge the file declares (its port list is the file's), or anywhere with `prune`.
  // A port of a bridge op created that the file does not list (nor its lxc section) is foreign:
  // it goes unless the bridge says `exclusive_ports: false`.
  const portGone = (port: LiveOvsPort, bridge: DesiredOvsBridge | undefined): boolean =>
    desired.absent.includes(port.name) ||
    (!wantedPorts.has(port.name) &&
      ((port.owned && (bridge !== undefined || desired.prune)) ||
        (bridge !== undefined &&
          (liveBy.get(bridge.name)?.owned === true || adopted.has(bridge.name)) &&
          bridge.exclusivePorts &&
          !bridge.guestPorts.includes(port.name))));
  const changes: OvsChange[] = [];
  // Bridges the file names that op did not create: adopted (op's external_ids put on them and
  // their ports the file's, as on a bridge op created) in the same transaction, or deleted.
  const adoptions: Adoption[] = [];
  const adopted = new Set<string>();
  for (const bridge of desired.ovs) {
    const cur = liveBy.get(bridge.name);
    const entry = desired.entries[bridge.name];
    if (cur === undefined || cur.owned || entry === undefined) continue;
    adoptions.push({ ...entry, what: `bridge ${bridge.name}` });
    adopted.add(bridge.name);
    changes.push(ovsChange.setBridge(bridge.name, "owner", undefined, "op"));
  }

  for (const bridge of desired.ovs) {
    const cur = liveBy.get(bridge.name);
    if (!cur) changes.push(ovsChange.addBridge(bridge.name, bridgeFields(bridge)));
    else {
      if (cur.datapath !== bridge.datapath)
        changes.push(ovsChange.setBridge(bridge.name, "datapath", cur.datapath, bridge.datapath));
      if (bridge.mtu !== undefined && cur.mtu !== bridge.mtu)
        changes.push(ovsChange.setBridge(bridge.name, "mtu", cur.mtu, bridge.mtu));
      if (bridge.mac !== undefined && cur.mac !== bridge.mac)
        changes.push(ovsChange.setBridge(bridge.name, "mac", cur.mac, bridge.mac));
    }
    for (const port of bridge.ports) {
      const curPort = cur?.ports.find((p) => p.name === port.name);
      if (!curPort) {
        const from = bridgeOfPort.get(port.name);
        const { name: _name, ...fields } = port;
        changes.push(
          ovsChange.addPort(bridge.name, port.name, {
            ...fields,
            ...(from === undefined ? {} : { from }),
          }),
        );
        continue;
      }
      const set = (
        field: "tag" | "internal" | "mtu" | "mac" | "owner",
        before: Value,
        after: Value,
      ) => changes.push(ovsChange.setPort(bridge.name, port.name, field, before, after));
      // A port the file declares as a link of its own is adopted as a bridge is.
      const entry = desired.entries[port.name];
      if (!curPort.owned && entry !== undefined) {
        adoptions.push({ ...entry, what: `port ${port.name}` });
        set("owner", undefined, "op");
      }
      if (curPort.tag !== port.tag) set("tag", curPort.tag, port.tag);
      if ((curPort.type === "internal") !== port.internal)
        set("internal", curPort.type === "internal", port.internal);
      if (port.mtu !== undefined && curPort.mtu !== port.mtu) set("mtu", curPort.mtu, port.mtu);
      if (port.mac !== undefined && curPort.mac !== port.mac) set("mac", curPort.mac, port.mac);
    }
    for (const curPort of cur?.ports ?? []) {
      if (portGone(curPort, bridge)) changes.push(ovsChange.removePort(bridge.name, curPort));
    }
  }
  for (const cur of liveBridges) {
    if (wanted.has(cur.name)) continue;
    if (desired.absent.includes(cur.name) || (cur.owned && desired.prune)) {
      const entry = desired.entries[cur.name];
      if (!cur.owned && entry !== undefined)
        adoptions.push({ ...entry, what: `bridge ${cur.name}` });
      changes.push(
        ovsChange.removeBridge(cur.name, {
          datapath: cur.datapath,
          ports: cur.ports.map((p) => p.name),
        }),
      );
      continue;
    }
    for (const curPort of cur.ports) {
      if (portGone(curPort, undefined)) changes.push(ovsChange.removePort(cur.name, curPort));
    }
  }
  // As for links: a bridge or port not adopted that nothing else changes is left as it is.
  const touches = (change: OvsChange, what: string) =>
    what === `bridge ${change.bridge}` ||
    (change.table === "port" && what === `port ${change.port}`);
  const unadopted = adoptions.filter((entry) => !entry.allowed).map((entry) => entry.what ?? "");
  for (const what of unadopted) {
    const own = changes.filter((change) => touches(change, what));
    const ownerOnly = own.every((change) => change.op === "set" && change.field === "owner");
    if (own.length > 0 && ownerOnly) {
      for (const change of own) changes.splice(changes.indexOf(change), 1);
    }
  }
  // What an adoption covers may have gone with another's owner-only changes (a port of a bridge).
  const adopting = adoptions.filter((entry) =>
    changes.some((change) => touches(change, entry.what ?? "")),
  );
  if (changes.length === 0) return [];
  return [
    {
      kind: "modify",
      ...ovsDatabaseRef,
      resource: "ovs-db",
      before: liveBridges.filter(
        (b) => wanted.has(b.name) || changes.some((change) => change.bridge === b.name),
      ),
      after: desired.ovs,
      changes,
      reason: `one OVSDB transaction: ${changes.map(describeOvsChange).join(", ")}`,
      // One transaction: refused while any bridge or port it adopts is not allowed, each
      // such entry named.
      ...(adopting.length === 0 ? {} : { adopt: adopting.map(ovsAdoption) }),
    },
  ];
}

type Value = string | number | boolean | undefined;

/** An adoption in the transaction, as people read it (`network OVS bridge ovsext`). */
function ovsAdoption(entry: Adoption): Adoption {
  return { ...entry, what: `network OVS ${entry.what ?? ""}` };
}

function bridgeFields(bridge: DesiredOvsBridge): NewOvsBridge {
  return {
    datapath: bridge.datapath,
    ...(bridge.mtu === undefined ? {} : { mtu: bridge.mtu }),
    ...(bridge.mac === undefined ? {} : { mac: bridge.mac }),
  };
}

function describeOvsChange(change: OvsChange): string {
  const what = `${change.table} ${change.path.slice(change.table.length + 1)}`;
  if (change.op === "add") return `+${what}`;
  if (change.op === "remove") return `-${what}`;
  return `${what} ${String(change.before ?? "-")} → ${String(change.after ?? "-")}`;
}

function routeActions(desired: NetDesired, live: NetLive): NetworkAction[] {
  const liveBy = new Map(live.routes.map((route) => [routeId(route), route]));
  const wanted = new Set(desired.routes.map(routeId));
  const linkBy = new Map(live.links.map((link) => [link.name, link]));
  const kept = new Set(desired.links.map((link) => link.name));
  const actions: NetworkAction[] = [];
  for (const route of desired.routes) {
    const cur = liveBy.get(routeId(route));
    const needs = [linkRef(route.dev)];
    if (!cur) {
      actions.push({
        kind: "create",
        plugin,
        resource: "route",
        id: routeId(route),
        after: route,
        reason: "new static route",
        needs,
      });
      continue;
    }
    const changes: FieldChange[] = [];
    if (cur.via !== route.via)
      changes.push({
        path: "via",
        ...(cur.via === undefined ? {} : { before: cur.via }),
        ...(route.via === undefined ? {} : { after: route.via }),
      });
    if (cur.metric !== route.metric)
      changes.push({ path: "metric", before: cur.metric, after: route.metric });
    if (changes.length > 0) {
      actions.push({
        kind: "modify",
        plugin,
        resource: "route",
        id: routeId(route),
        before: cur,
        after: route,
        changes,
        reason: changes.map(describeChange).join(", "),
        needs,
      });
    }
  }
  // op adds its routes with `proto static`; those on links op owns and keeps are pruned.
  for (const cur of live.routes) {
    if (wanted.has(routeId(cur)) || cur.protocol !== "static") continue;
    if (linkBy.get(cur.dev)?.owned !== true || !kept.has(cur.dev)) continue;
    actions.push({
      kind: "delete",
      plugin,
      resource: "route",
      id: routeId(cur),
      before: cur,
      reason: "static route no longer in the file",
    });
  }
  return actions;
}
