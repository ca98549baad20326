/** One network action through the Incus API: create, change the file's keys, or delete. */
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";
import { type ActionOn, unreachable } from "../../../src/plugin.js";
import { inProject } from "../refs.js";
import type { LxcKinds } from "../types.js";

export async function applyNetwork(
  action: ActionOn<"network", LxcKinds["network"]>,
  incus: IncusClient,
): Promise<void> {
  switch (action.kind) {
    case "create": {
      const network = action.after;
      await againAfterLinkRace(() =>
        incus.request(
          "POST",
          inProject("/1.0/networks", network.project),
          {
            name: network.name,
            type: network.type,
            description: network.description ?? "",
            config: network.config,
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

function networkPath(name: string): string {
  return `/1.0/networks/${encodeURIComponent(name)}`;
}
