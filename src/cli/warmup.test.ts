import { describe, expect, it } from "vitest";
import { warmUp } from "./warmup.js";

describe("the snapshot's warm-up", () => {
  // It compiles what a plan runs only if it gets through validation, prepare and diff.
  it("plans creates, modifies and deletes from its sample without error", () => {
    const kinds = new Set(warmUp().map((action) => action.kind));
    expect([...kinds].sort()).toEqual(["create", "delete", "modify"]);
  });
});
