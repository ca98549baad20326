/** One network action through the Incus API: create, change the file's keys, or delete. */
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";
import { type ActionOn, unreachable } from "../../../src/plugin.js";
import { withTarget } from "../containers/placement.js";
import { inProject } from "../refs.js";
import type { LxcKinds } from "../types.js";

export async function applyNetwork(
  action: ActionOn<"network", LxcKinds["network"]>,
  incus: IncusClient,
): Promise<void> {
  switch (action.kind) {
    case "create": {
      const network = action.after;
      const members = await clusterMembers(incus);
      // On a cluster, Incus creates a network in two steps: a pending definition on each
      // member (with only the member-specific keys), then the create that sets it up on all.
      const { member, shared } = splitMemberKeys(network.config);
      for (const name of members) {
        await incus
          .request(
            "POST",
            withTarget(inProject("/1.0/networks", network.project), name),
            { name: network.name, type: network.type, config: member },
            { what: `defining network ${network.name} on cluster member ${name}` },
          )
          .catch((error: unknown) => {
            // Defined by a run that stopped before the cluster-wide create: kept as it is.
            if (!(error instanceof OpError && /already defined on member/.test(error.message)))
              throw error;
          });
      }
      await againAfterLinkRace(() =>
        incus.request(
          "POST",
          inProject("/1.0/networks", network.project),
          {
            name: network.name,
            type: network.type,
            description: network.description ?? "",
            config: members.length === 0 ? network.config : shared,
          },
          { what: `creating network ${network.name}` },
        ),
      );
      return;
    }
    case "modify": {
      const network = action.after;
      // PATCH merges: the keys the file does not give stay as Incus has them.
      await againAfterLinkRace(() =>
        incus.request(
          "PATCH",
          inProject(networkPath(network.name), network.project),
          {
            config: network.config,
            ...(network.description === undefined ? {} : { description: network.description }),
          },
          { what: `updating network ${network.name}` },
        ),
      );
      return;
    }
    case "delete": {
      const network = action.before;
      await againAfterLinkRace(() =>
        incus.request("DELETE", inProject(networkPath(network.name), network.project), undefined, {
          what: `deleting network ${network.name}`,
        }),
      );
      return;
    }
    default:
      return unreachable(action);
  }
}

/**
 * Setting a bridge up or down, Incus reads the host's links one by one; one that another
 * process removes meanwhile (a container stopping) fails the whole call with "does not exist".
 * Nothing was changed then, so the call is made again, a few times at most.
 */
const raceAttempts = 5;

async function againAfterLinkRace(call: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call();
      return;
    } catch (error) {
      const race =
        error instanceof OpError &&
        /Failed to delete bridge children interfaces: .*does not exist/.test(error.message);
      if (!race || attempt >= raceAttempts) throw error;
    }
  }
}

/**
 * The keys a cluster member's pending definition takes (Incus refuses any other there): the
 * file's value is given to every member.
 */
const memberKeys: ReadonlySet<string> = new Set([
  "bridge.external_interfaces",
  "parent",
  "bgp.ipv4.nexthop",
  "bgp.ipv6.nexthop",
]);

export function splitMemberKeys(config: Record<string, string>): {
  member: Record<string, string>;
  shared: Record<string, string>;
} {
  const member: Record<string, string> = {};
  const shared: Record<string, string> = {};
  for (const [key, value] of Object.entries(config))
    (memberKeys.has(key) ? member : shared)[key] = value;
  return { member, shared };
}

/** The names of the cluster's members; none when Incus is not a cluster. */
async function clusterMembers(incus: IncusClient): Promise<string[]> {
  const cluster = await incus.request<{ enabled?: boolean }>("GET", "/1.0/cluster", undefined, {
    what: "asking whether Incus is a cluster",
  });
  if (cluster.enabled !== true) return [];
  const urls = await incus.request<string[]>("GET", "/1.0/cluster/members", undefined, {
    what: "listing the cluster's members",
  });
  return urls.map((url) => decodeURIComponent(url.split("/").pop() ?? url));
}

function networkPath(name: string): string {
  return `/1.0/networks/${encodeURIComponent(name)}`;
}
