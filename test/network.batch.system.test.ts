/**
 * The group-commit `ip -batch` runner against real `ip` in a throw-away namespace: actions
 * submitted together share one process, and when the kernel refuses a line only that action
 * fails; the others still apply.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIpBatcher } from "../plugins/network/batch.js";
import { createRunner } from "../src/exec.js";
import { recordingRunner } from "./support/engine.js";
import { createNetns, type TestNetns } from "./support/netns.js";
import { links } from "./support/network.js";

let netns: TestNetns;

beforeEach(() => {
  netns = createNetns("batch");
});

afterEach(() => netns.remove());

describe("ip batch group commit", () => {
  it("runs concurrent submissions in one process", async () => {
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const batcher = createIpBatcher(spy);
    await Promise.all(
      ["a", "b", "c"].map((n) =>
        batcher.submit(n, [
          { text: `link add v${n} type veth peer name v${n}p` },
          { text: `link set v${n} up` },
        ]),
      ),
    );
    expect(spy.calls.filter((c) => c.includes("-batch"))).toHaveLength(1);
    const now = await links(spy);
    for (const n of ["a", "b", "c"]) expect(now.get(`v${n}`)?.flags).toContain("UP");
  });

  it("fails only the refused action, with what it had applied, and goes on with the others", async () => {
    const spy = recordingRunner(createRunner({ netns: netns.name }));
    const batcher = createIpBatcher(spy);
    const results = await Promise.allSettled([
      batcher.submit("one", [{ text: "link add one type veth peer name onep" }]),
      batcher.submit("two", [
        { text: "link add two type veth peer name twop" },
        { text: "link set two mtu 70000" },
        { text: "link set two up" },
      ]),
      batcher.submit("three", [
        { text: "link del nosuch0", tolerate: /Cannot find device/ },
        { text: "link add three type veth peer name threep" },
      ]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const reason = String((results[1] as PromiseRejectedResult).reason);
    expect(reason).toMatch(/kernel refused `link set two mtu 70000`/);
    expect(reason).toMatch(/already applied: `link add two type veth peer name twop`/);
    const now = await links(spy);
    expect([...now.keys()].filter((n) => !n.endsWith("p") && n !== "lo").sort()).toEqual([
      "one",
      "three",
      "two",
    ]);
    expect(now.get("two")?.flags).not.toContain("UP");
    // The first process stopped at the refused line; the second ran the rest.
    expect(spy.calls.filter((c) => c.includes("-batch")).length).toBeGreaterThanOrEqual(2);
  });
});
