/**
 * The watch's event sources (src/watch/sources) spell ids the way each plugin's actions do:
 * built here from the plugins' own ref functions, since src/ may not import plugins/.
 */
import type { SourceIds } from "../src/watch/sources/index.js";
import { containerId } from "./lxc/refs.js";
import { looksLikeContainerVeth } from "./lxc/veths.js";
import { ovsColumns } from "./network/ovs.js";
import { linkRef, ovsDatabaseRef, routeId } from "./network/refs.js";
import { tableId } from "./nftables/types.js";

export const watchSourceIds: SourceIds = {
  container: containerId,
  link: (name) => linkRef(name).id,
  route: routeId,
  ovsDatabase: ovsDatabaseRef.id,
  ovsColumns,
  table: (family, name) => tableId({ family, name }),
  isContainerVeth: looksLikeContainerVeth,
};
