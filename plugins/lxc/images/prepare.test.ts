/** Refusals of `ensure: absent` images before any change, each with its JSON path. */
import { describe, expect, it } from "vitest";
import type { DesiredContainer, LxcLive } from "../types.js";
import { checkAbsentImages } from "./prepare.js";

const fp = "a".repeat(64);
const live = (managed: boolean, description: string): LxcLive => ({
  containers: [],
  bridges: {},
  aliases: { old: fp },
  images: [{ fingerprint: fp, aliases: [{ name: "old", description }], managed, usedBy: [] }],
});
const absent = [{ alias: "old", path: "/plugins/lxc/images/0" }];

function problemsOf(containers: DesiredContainer[], state: LxcLive): string[] {
  const lines: string[] = [];
  checkAbsentImages(absent, containers, state, {
    add: (path, message) => lines.push(`${path}: ${message}`),
  });
  return lines;
}

describe("checkAbsentImages", () => {
  it("refuses a container of the file created from an alias the file removes", () => {
    const container = {
      name: "web",
      image: "old",
      path: "/plugins/lxc/containers/3",
    } as DesiredContainer;
    expect(problemsOf([container], live(true, ""))).toEqual([
      '/plugins/lxc/containers/3: web is created from image "old", which /plugins/lxc/images/0 makes absent; give the container another image or drop "ensure": "absent"',
    ]);
  });

  it("refuses an alias op did not make, of an image op did not import", () => {
    expect(problemsOf([], live(false, "someone's"))).toEqual([
      `/plugins/lxc/images/0/alias: alias "old" is not op's (its image ${fp.slice(0, 12)} has no user.op.managed property and the alias was not made by op); op removes only images it imported: remove it by hand (incus image alias delete old) or drop this entry`,
    ]);
  });

  it("accepts op's alias, or any alias of an image op imported", () => {
    expect(problemsOf([], live(false, "imported by op"))).toEqual([]);
    expect(problemsOf([], live(true, ""))).toEqual([]);
  });
});
