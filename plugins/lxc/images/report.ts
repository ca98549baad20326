/** `op query --plugin lxc`: the image store, one row per image. */
import type { LiveReport } from "../../../src/plugin.js";
import { containerId } from "../refs.js";
import type { LiveImage } from "./types.js";

export function reportImages(images: readonly LiveImage[]): LiveReport {
  return {
    title: "images",
    columns: ["fingerprint", "aliases", "used by", "op"],
    rows: images.map((image) => [
      image.fingerprint.slice(0, 12),
      image.aliases.map((alias) => alias.name).join(" ") || "-",
      image.usedBy.map((user) => containerId(user.project, user.name)).join(" ") || "-",
      image.managed ? "yes" : "no",
    ]),
  };
}
