/**
 * prepare's step for the Incus objects beside containers (plugins/lxc/networks/,
 * plugins/lxc/volumes/): each kind checked against the host, then the containers' use of them.
 */
import type { Ctx } from "../../src/plugin.js";
import { checkNetworks } from "./networks/check.js";
import { checkContainerNetwork, type DeclaredLink, resolveNetworks } from "./networks/prepare.js";
import { checkLeases } from "./nics/leases.js";
import type { ProblemSink } from "./objects.js";
import { containerId, defaultProject } from "./refs.js";
import type { DesiredAbsent, DesiredContainer, LxcLive, LxcSection } from "./types.js";
import { checkVolumes } from "./volumes/check.js";
import { checkAttachedVolumes, resolveVolumes } from "./volumes/prepare.js";

/**
 * Networks and volumes normalised and checked against the host, and the containers' use of
 * them: a container that is deleted this run (absent or pruned) no longer holds them.
 */
export function prepareObjects(
  section: LxcSection,
  base: string,
  live: LxcLive,
  problems: ProblemSink,
  run: {
    containers: readonly DesiredContainer[];
    absent: readonly DesiredAbsent[];
    prune: boolean;
    declaredLinks: readonly DeclaredLink[];
    /** Read only when the file declares networks. */
    sys: () => Ctx["host"]["sys"];
  },
) {
  const named = new Set([...run.containers, ...run.absent].map((c) => c.name));
  const leaving = new Set([
    ...run.absent.map((gone) => containerId(defaultProject, gone.name)),
    ...live.containers
      .filter((c) => run.prune && c.managed && !named.has(c.name))
      .map((c) => containerId(c.project, c.name)),
  ]);
  const stays = (id: string) => !leaving.has(id);
  const networks = checkNetworks(section, base, problems);
  const volumes = checkVolumes(section, base, problems);
  const liveNetworks = live.networks ?? [];
  const storage = { pools: live.pools ?? [], volumes: live.volumes ?? [] };
  resolveNetworks(networks, liveNetworks, {
    problems,
    declaredLinks: run.declaredLinks,
    sys: run.sys,
    stays,
  });
  resolveVolumes(volumes, storage, { problems, stays });
  for (const container of run.containers) {
    for (const attached of container.networks ?? []) {
      const use = { ...container, path: attached.path, network: attached.network };
      checkContainerNetwork(use, networks, liveNetworks, problems);
    }
    checkLeases(container, networks, liveNetworks, problems);
    checkAttachedVolumes(container, volumes, storage, problems);
  }
  return { networks, volumes };
}
