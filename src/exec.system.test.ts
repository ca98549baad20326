/** The runner inside a network namespace: making one needs root. */
import { describe, expect, it } from "vitest";
import { createNetns } from "../test/support/netns.js";
import { createRunner } from "./exec.js";

describe("createRunner", () => {
  it("runs commands inside a network namespace when asked", async () => {
    const netns = createNetns("exec");
    try {
      const inside = await createRunner({ netns: netns.name }).run("ip", ["-j", "link", "show"]);
      const names = (JSON.parse(inside.stdout) as { ifname: string }[]).map((link) => link.ifname);
      expect(names).toEqual(["lo"]);
    } finally {
      netns.remove();
    }
  });
});
