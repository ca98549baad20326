/**
 * What the Incus object kinds share: listings as a client bound to one project sees them, and
 * which users of an object stay after a run that deletes containers and profiles.
 */
import { describe, expect, it } from "vitest";
import type { IncusClient } from "../../src/incus.js";
import { asListed, usersThatStay } from "./objects.js";
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
    expect(usersThatStay(usedBy, leavingOf()).map((u) => u.name)).toEqual([
      "web",
      "small",
      "small",
      "networks/other",
    ]);
  });

  it("drops the containers and the profiles the same run deletes, by project", () => {
    const leaving = leavingOf({ containers: ["web"], profiles: ["small"] });
    expect(usersThatStay(usedBy, leaving)).toEqual([
      { kind: "profile", project: "optest-p", name: "small" },
      { kind: "other", project: "default", name: "networks/other" },
    ]);
  });
});
