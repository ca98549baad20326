/**
 * What the Incus object kinds share: listings as a client bound to one project sees them, and
 * which users of an object stay after a run that deletes containers and profiles.
 */
import { describe, expect, it } from "vitest";
import type { IncusClient } from "../../src/incus.js";
import { asListed, userOf, usersThatStay } from "./objects.js";
import { leavingOf } from "./objects.testing.js";

const client = (project?: string) => ({ project }) as unknown as IncusClient;

describe("asListed", () => {
  it("keeps every project's objects for a client of the whole host", () => {
    expect(asListed(client(), [{ project: "p" }, {}])).toEqual([
      { project: "p" },
      { project: "default" },
    ]);
  });

  it("gives a bound client its project as default, and marks the default project's inherited", () => {
    expect(asListed(client("optest-b"), [{ project: "optest-b" }, {}])).toEqual([
      { project: "default" },
      { project: "default" },
    ]);
    // A project without networks (or profiles, volumes) of its own lists the default project's.
    expect(asListed(client("optest-b"), [{ project: "default", name: "opincbr0" }])).toEqual([
      { project: "default", name: "opincbr0", inherited: true },
    ]);
  });
});

describe("usersThatStay", () => {
  const usedBy = [
    "/1.0/instances/web",
    "/1.0/profiles/small",
    "/1.0/profiles/small?project=optest-p",
    "/1.0/networks/other",
  ];

  it("keeps every user when the run deletes none", () => {
    expect(usersThatStay(usedBy, leavingOf()).map((u) => u.words)).toEqual([
      "instance web",
      "profile small",
      "profile small (project optest-p)",
      "network other",
    ]);
  });

  it("drops the containers and the profiles the same run deletes, by project", () => {
    const leaving = leavingOf({ containers: ["web"], profiles: ["small"] });
    expect(usersThatStay(usedBy, leaving).map((u) => u.words)).toEqual([
      "profile small (project optest-p)",
      "network other",
    ]);
  });
});

describe("what uses an object, as Incus lists it", () => {
  it("names instances and profiles by op's refs, other kinds in words", () => {
    expect(userOf("/1.0/instances/ct1")).toEqual({
      words: "instance ct1",
      ref: { plugin: "lxc", resource: "container", id: "ct1" },
    });
    expect(userOf("/1.0/profiles/small?project=web")).toEqual({
      words: "profile small (project web)",
      ref: { plugin: "lxc", resource: "profile", id: "web/small" },
    });
    expect(userOf("/1.0/storage-pools/default/volumes/custom/data?project=web")).toEqual({
      words: "custom volume default/data (project web)",
      ref: { plugin: "lxc", resource: "volume", id: "web/default/data" },
    });
    expect(userOf("/1.0/networks/n1")).toEqual({
      words: "network n1",
      ref: { plugin: "lxc", resource: "network", id: "n1" },
    });
    expect(userOf("/1.0/images/abc?project=web")).toEqual({ words: "image abc (project web)" });
  });
});
