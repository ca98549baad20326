/**
 * prepare's step for the Incus objects beside containers (plugins/lxc/networks/,
 * plugins/lxc/volumes/): each kind checked against the host, then the containers' use of them.
 */
import type { Ctx } from "../../src/plugin.js";
import { checkNetworks } from "./networks/check.js";
import { checkContainerNetwork, type DeclaredLink, resolveNetworks } from "./networks/prepare.js";
import { checkLeases } from "./nics/leases.js";
import { leavingIds, type ProblemSink } from "./objects.js";
import { profilesLeaving } from "./profiles/diff.js";
import type { DesiredProfiles } from "./profiles/types.js";
import { containerId, profileId } from "./refs.js";
import type { DesiredAbsent, DesiredContainer, LxcLive, LxcSection } from "./types.js";
import { checkVolumes } from "./volumes/check.js";
import { checkAttachedVolumes, resolveVolumes } from "./volumes/prepare.js";

/**
 * Networks and volumes normalised and checked against the host, and the containers' use of
 * them: a container or profile that is deleted this run (absent or pruned) no longer holds them.
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
    /** The file's profiles: one deleted this run no longer holds a network or volume. */
    profiles: DesiredProfiles;
    declaredLinks: readonly DeclaredLink[];
    /** Read only when the file declares networks. */
    sys: () => Ctx["host"]["sys"];
  },
) {
  const named = new Set(
    [...run.containers, ...run.absent].map((c) => containerId(c.project, c.name)),
  );
  const leaving = leavingIds({
    containers: new Set([
      ...run.absent.map((gone) => containerId(gone.project, gone.name)),
      ...live.containers
        .filter((c) => run.prune && c.managed)
        .map((c) => containerId(c.project, c.name))
        .filter((id) => !named.has(id)),
    ]),
    profiles: new Set(
      profilesLeaving(run.profiles, live.profiles ?? [], run.prune).map(({ profile }) =>
        profileId(profile.project, profile.name),
      ),
    ),
  });
  const networks = checkNetworks(section, base, problems);
  const volumes = checkVolumes(section, base, problems);
  const liveNetworks = live.networks ?? [];
  const storage = { pools: live.pools ?? [], volumes: live.volumes ?? [] };
  resolveNetworks(networks, liveNetworks, {
    problems,
    declaredLinks: run.declaredLinks,
    sys: run.sys,
    leaving,
  });
  resolveVolumes(volumes, storage, { problems, leaving });
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
