/**
 * Pre-images for the network plugin (src/plugin.ts ResourceImages): the links, routes and OVS
 * bridges a run touches, written as a network section by op export's own code, so that an
 * undo is an ordinary apply of that section. A link's bridge membership is written on the
 * bridge (`bridge.ports`), so a port's old and new bridges are in the scope with it.
 */
import type { Interface, NetworkSection } from "../../src/generated/network.js";
import type { ResourceImage } from "../../src/plugin.js";
import { exportNetwork } from "./export.js";
import type { LinkType, NetLive, NetworkAction } from "./types.js";

/** The links an undo sets, each with its type (what `ensure: absent` needs when it is gone). */
export interface NetworkScope {
  links: Record<string, LinkType>;
}

/** Pure: every link the actions change, create or delete, and the links their undo must set. */
export function networkScope(actions: readonly NetworkAction[], live: NetLive): NetworkScope {
  const liveBy = new Map(live.links.map((link) => [link.name, link]));
  const links: Record<string, LinkType> = {};
  const add = (name: string | null | undefined, type?: LinkType) => {
    if (name === undefined || name === null || Object.hasOwn(links, name)) return;
    const link = liveBy.get(name);
    // A container's veth is its maker's (lxc): restored with the container, not here.
    if (link?.peerElsewhere === true && !link.owned) return;
    const known = link?.type;
    const kind = type ?? (known === "other" ? undefined : known);
    // A link of a kind op does not manage (lo, a tun) is neither changed nor restored.
    if (kind !== undefined) links[name] = kind;
  };
  // With a link, its veth peer and the bridge it was in: membership lives on the bridge.
  const withRelated = (name: string, type?: LinkType) => {
    add(name, type);
    const now = liveBy.get(name);
    if (now?.peer !== undefined) add(now.peer);
    if (now?.master !== undefined && now.master !== "ovs-system") add(now.master);
  };
  for (const action of actions) {
    switch (action.resource) {
      case "link": {
        const desired = action.kind === "create" ? action.after.link : undefined;
        withRelated(
          action.id,
          desired?.type ?? (action.kind === "modify" ? action.after.type : undefined),
        );
        const after =
          action.kind === "create"
            ? action.after.link
            : action.kind === "modify"
              ? action.after
              : undefined;
        add(after?.master);
        for (const port of action.kind === "create" ? action.after.enrol : []) withRelated(port);
        for (const port of after?.ports ?? []) withRelated(port);
        for (const link of live.links) if (link.master === action.id) add(link.name);
        break;
      }
      case "route":
        withRelated(
          action.kind === "create"
            ? action.after.dev
            : action.kind === "modify"
              ? action.after.dev
              : action.before.dev,
        );
        break;
      case "ovs-db":
        if (action.kind !== "modify") break;
        for (const change of action.changes) {
          add(change.bridge, "ovs-bridge");
          if (change.table === "port") {
            const internal =
              change.op === "add"
                ? change.after.internal
                : change.op === "remove"
                  ? change.before.type === "internal"
                  : false;
            add(change.port, internal ? "ovs-interface" : undefined);
            if (change.op === "add" && change.after.from !== undefined)
              add(change.after.from, "ovs-bridge");
          }
        }
        break;
    }
  }
  return { links };
}

/** The scope's links as `live` has them (every route on them too); absent where it has none. */
export function networkImage(scope: unknown, live: NetLive): ResourceImage {
  const exported = exportNetwork(live, { all: true });
  const section = (exported.section ?? {}) as NetworkSection;
  const { links } = scope as NetworkScope;
  const wanted = new Set(Object.keys(links));
  const interfaces: Interface[] = (section.interfaces ?? []).filter((iface) =>
    wanted.has(iface.name),
  );
  const present = new Set(interfaces.map((iface) => iface.name));
  // A link that is there but that export cannot write (its peer in another namespace).
  const refused = exported.notes.filter((note) => [...wanted].some((name) => mentions(note, name)));
  const liveNames = new Set(live.links.map((link) => link.name));
  for (const [name, type] of Object.entries(links)) {
    if (present.has(name)) continue;
    if (liveNames.has(name) && type !== "ovs-bridge" && type !== "ovs-interface") {
      refused.push(`link ${name}: op export does not write it, so an undo could not restore it`);
      continue;
    }
    if (type === "ethernet") {
      refused.push(`ethernet ${name}: gone, and op cannot make a NIC again`);
      continue;
    }
    interfaces.push({ name, type, ensure: "absent" });
  }
  const routes = (section.routes ?? []).filter((route) => present.has(route.dev));
  return {
    section:
      interfaces.length === 0
        ? undefined
        : { interfaces, ...(routes.length === 0 ? {} : { routes }) },
    refused: refused.filter((note) => !harmless(note)),
  };
}

/** Whether an export note is about link `name`: notes start with `kind name:` or name it so. */
function mentions(note: string, name: string): boolean {
  return new RegExp(`(^|[ /])${escapeRegExp(name)}[:, ]`).test(note);
}

/** A note about what the file writes differently but an undo restores all the same. */
function harmless(note: string): boolean {
  // The OVS default datapath is written as "system": the same datapath, named.
  return note.includes("datapath_type");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
