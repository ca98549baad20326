/**
 * Which images and aliases go, on small hand-written stores: each rule that keeps an image has
 * a case that deletes it when the rule does not hold, so flipping a condition fails a test.
 */
import { describe, expect, it } from "vitest";
import type { Action } from "../../../src/plugin.js";
import { diffLxc } from "../diff.js";
import type { DesiredContainer, LiveContainer, LxcDesired, LxcLive } from "../types.js";
import { diffImageDeletes } from "./diff.js";
import type { ImageDelete, LiveImage } from "./types.js";

const fpA = "a".repeat(64);
const fpB = "b".repeat(64);

function image(fingerprint: string, fields: Partial<LiveImage> = {}): LiveImage {
  return {
    fingerprint,
    aliases: [{ name: "old", description: "imported by op" }],
    managed: true,
    usedBy: [],
    ...fields,
  };
}

const store = (images: LiveImage[], containers: LiveContainer[] = []): LxcLive => ({
  containers,
  bridges: {},
  aliases: Object.fromEntries(
    images.flatMap((i) => i.aliases.map((alias) => [alias.name, i.fingerprint])),
  ),
  images,
});

const file = (fields: Partial<LxcDesired>): LxcDesired => ({
  prune: false,
  images: [],
  containers: [],
  absent: [],
  ...fields,
});

/** The deletes when no container of the run is deleted. */
const deletes = (desired: LxcDesired, images: LiveImage[]) =>
  diffImageDeletes(desired, store(images), new Map());

const absent = (...aliases: string[]) =>
  aliases.map((alias, i) => ({ alias, path: `/plugins/lxc/images/${i}` }));

/** A container of the file created from `alias` (only its image matters here). */
const usesAlias = (name: string, alias: string) => ({ name, image: alias }) as DesiredContainer;

/** A stopped container op made, as the query sees it (only what a delete reads). */
const stoppedContainer = (name: string) =>
  ({ name, project: "default", managed: true, status: "stopped", config: {} }) as LiveContainer;

const summary = (actions: Action[]) =>
  actions
    .filter((a) => a.resource === "image")
    .map((a) => {
      const before = (a as { before: ImageDelete }).before;
      return `${a.kind} ${a.id} ${before.withImage ? "image" : `alias ${before.alias}`}`;
    });

describe("ensure: absent", () => {
  it("deletes the image with its alias when op imported it and nothing keeps it", () => {
    const actions = deletes(file({ absentImages: absent("old") }), [image(fpA)]);
    expect(summary(actions)).toEqual(["delete image old image"]);
    expect(actions[0]?.reason).toBe(
      `ensure: absent: delete image ${fpA.slice(0, 12)} imported by op (alias old), no instance uses it`,
    );
    expect(actions[0]?.needs).toBeUndefined();
  });

  it("removes only the alias while a live instance (any project) uses the image", () => {
    const used = image(fpA, { usedBy: [{ project: "p1", name: "web" }] });
    const actions = deletes(file({ absentImages: absent("old") }), [used]);
    expect(summary(actions)).toEqual(["delete image old alias old"]);
    expect(actions[0]?.reason).toBe(
      `ensure: absent: remove alias old; image ${fpA.slice(0, 12)} kept (used by p1/web)`,
    );
  });

  it("deletes the image after the container deletes that free it, and needs them", () => {
    const used = image(fpA, { usedBy: [{ project: "default", name: "ct1" }] });
    const actions = diffLxc(
      file({
        absentImages: absent("old"),
        absent: [
          {
            name: "ct1",
            project: "default",
            path: "/plugins/lxc/containers/0",
            unprotect: false,
            stopTimeout: 5,
            removeSources: [],
          },
        ],
      }),
      store([used], [stoppedContainer("ct1")]),
    );
    expect(actions.map((a) => `${a.kind} ${a.id}`)).toEqual(["delete ct1", "delete image old"]);
    expect(actions[1]?.needs).toEqual([{ plugin: "lxc", resource: "container", id: "ct1" }]);
    expect(actions[1]?.reason).toContain("once ct1 is deleted");
    expect(summary(actions)).toEqual(["delete image old image"]);
  });

  it("removes only the alias when another alias names the image", () => {
    const named = image(fpA, {
      aliases: [
        { name: "old", description: "imported by op" },
        { name: "other", description: "" },
      ],
    });
    const actions = deletes(file({ absentImages: absent("old") }), [named]);
    expect(summary(actions)).toEqual(["delete image old alias old"]);
    expect(actions[0]?.reason).toContain("alias other names it");
    // Both aliases absent: the image goes, once.
    const both = deletes(file({ absentImages: absent("old", "other") }), [named]);
    expect(summary(both)).toEqual(["delete image old image"]);
  });

  it("removes only op's alias of an image op did not import", () => {
    const foreign = image(fpA, { managed: false });
    const actions = deletes(file({ absentImages: absent("old") }), [foreign]);
    expect(summary(actions)).toEqual(["delete image old alias old"]);
    expect(actions[0]?.reason).toContain("op did not import it");
  });

  it("keeps the image when the file imports the same content under another alias", () => {
    const desired = file({
      absentImages: absent("old"),
      images: [
        {
          alias: "new",
          path: "/plugins/lxc/images/1",
          metadata: "m",
          rootfs: "r",
          fingerprint: fpA,
        },
      ],
    });
    expect(summary(deletes(desired, [image(fpA)]))).toEqual(["delete image old alias old"]);
  });

  it("plans nothing for an alias that is already gone", () => {
    expect(deletes(file({ absentImages: absent("gone") }), [image(fpA)])).toEqual([]);
  });
});

describe("prune_images", () => {
  it("deletes images op imported that nothing keeps, and only those", () => {
    const images = [
      image(fpA), // op's, unused, not in the file: deleted
      image(fpB, { managed: false, aliases: [{ name: "theirs", description: "" }] }),
      image("c".repeat(64), { aliases: [{ name: "named", description: "" }] }),
      image("d".repeat(64), {
        aliases: [{ name: "busy", description: "" }],
        usedBy: [{ project: "p2", name: "vm1" }],
      }),
      image("e".repeat(64), { aliases: [] }),
      image("f".repeat(64), { aliases: [{ name: "declared", description: "" }] }),
    ];
    const desired = file({
      pruneImages: true,
      containers: [usesAlias("ct", "named")],
      images: [
        {
          alias: "declared",
          path: "/plugins/lxc/images/0",
          metadata: "m",
          rootfs: "r",
          fingerprint: "f".repeat(64),
        },
      ],
    });
    const actions = deletes(desired, images);
    expect(summary(actions)).toEqual([
      "delete image old image",
      `delete image sha256:${"e".repeat(64)} image`,
    ]);
    expect(actions[0]?.reason).toBe(
      `not in the file (prune_images): delete image ${fpA.slice(0, 12)} imported by op (alias old), no instance uses it`,
    );
    expect(actions[1]?.reason).toContain("(no alias)");
    // Without the flag, nothing is pruned.
    expect(deletes({ ...desired, pruneImages: false }, images)).toEqual([]);
  });

  it("prunes an image only its deleted containers used, after them", () => {
    const used = image(fpA, { usedBy: [{ project: "default", name: "ct1" }] });
    const desired = file({ pruneImages: true });
    expect(deletes(desired, [used])).toEqual([]);
    const ref = { plugin: "lxc", resource: "container", id: "ct1" };
    const freed = diffImageDeletes(desired, store([used]), new Map([["ct1", ref]]));
    expect(summary(freed)).toEqual(["delete image old image"]);
    expect(freed[0]?.needs).toEqual([ref]);
  });
});
