/** `op query --plugin lxc`: the custom volumes, one row each. */
import type { LiveReport } from "../../../src/plugin.js";
import { userOf, usersWords } from "../objects.js";
import type { LiveVolume } from "./types.js";

export function reportVolumes(volumes: readonly LiveVolume[]): LiveReport {
  return {
    title: "volumes",
    columns: ["pool", "name", "project", "content", "size", "used by", "op"],
    rows: volumes.map((volume) => [
      volume.pool,
      volume.name,
      volume.project,
      volume.contentType,
      volume.config.size ?? "-",
      usersWords(volume.usedBy.map(userOf)) || "-",
      volume.managed ? "yes" : "no",
    ]),
  };
}
