/**
 * The hosts of `op inventory`: the file's present containers that Incus has, each with its
 * address read live (the first global IPv4 address of eth0, as plugins/lxc/ready.ts finds it),
 * its cloud-init user and its `groups` / `ansible_vars`. A container that is gone is not
 * listed; a stopped one is listed without `ansible_host`. One Incus call for all of them.
 */
import type { IncusClient } from "../../../src/incus.js";
import type { Ctx, FileView, InventoryRequest } from "../../../src/plugin.js";
import {
  hostEntry,
  hostJson,
  type InventoryHost,
  listJson,
  renderInventory,
} from "../inventory.js";
import { opDefaultDirectories, resolveFromStateDir } from "../paths.js";
import { checkEntries, fallbackImage } from "../prepare.js";
import { addressOf } from "../ready.js";
import { containerId, defaultProject } from "../refs.js";
import { bindIncus } from "../remote.js";
import type { LxcSection } from "../types.js";

interface ListedInstance {
  name: string;
  project?: string;
  type: string;
  state?: Parameters<typeof addressOf>[0] | null;
}

export async function inventoryHosts(
  section: LxcSection,
  stateDir: string | undefined,
  incus: IncusClient,
): Promise<InventoryHost[]> {
  // The file was checked already (op's state checks); the sink only satisfies the signature.
  const problems = { lines: [] as string[], add() {} };
  const entries = checkEntries(section, "/plugins/lxc", fallbackImage, problems, {
    resolvePath: (path) => resolveFromStateDir(path, stateDir),
    opDirs: opDefaultDirectories,
  });
  // A client bound to one project sees it as the file's `default` (as the lxc query does).
  const listing =
    incus.project === undefined
      ? "/1.0/instances?recursion=2&all-projects=true"
      : "/1.0/instances?recursion=2";
  const listed = await incus.request<ListedInstance[]>("GET", listing, undefined, {
    what: "listing containers and their addresses",
  });
  const byId = new Map(
    listed
      .filter((instance) => instance.type === "container")
      .map((instance) => [
        containerId(
          incus.project === undefined ? (instance.project ?? defaultProject) : defaultProject,
          instance.name,
        ),
        instance,
      ]),
  );
  const hosts: InventoryHost[] = [];
  for (const { spec, container } of entries) {
    if ((spec.ensure ?? "present") === "absent") continue;
    const instance = byId.get(containerId(container.project, container.name));
    if (instance === undefined) continue;
    const provision = container.provision;
    hosts.push(
      hostEntry(
        inventoryName(container.project, container.name),
        instance.state == null ? undefined : addressOf(instance.state),
        provision?.user,
        provision?.groups ?? [],
        provision?.ansibleVars ?? {},
      ),
    );
  }
  return hosts;
}

/**
 * A container's host name in the inventory: its name, or `PROJECT_NAME` outside the default
 * project, so that the same name in two projects makes two hosts. It cannot clash: an Incus
 * instance name has no `_`.
 */
export function inventoryName(project: string, name: string): string {
  return project === defaultProject ? name : `${project}_${name}`;
}

/** The lxc plugin's `inventory` (src/plugin.ts): its hosts in the form `request` asks. */
export async function lxcInventory(
  section: unknown,
  ctx: Ctx,
  file: FileView,
  request: InventoryRequest,
): Promise<string> {
  const hosts =
    section === undefined
      ? []
      : await inventoryHosts(section as LxcSection, file.stateDir, bindIncus(ctx, section));
  if ("host" in request) return `${JSON.stringify(hostJson(hosts, request.host), null, 2)}\n`;
  if ("list" in request) return `${JSON.stringify(listJson(hosts), null, 2)}\n`;
  return renderInventory(hosts, request.format);
}
