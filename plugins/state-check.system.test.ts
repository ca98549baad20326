/**
 * `op validate` with nft's own parser in a throw-away network namespace (needs root and nft,
 * as the rest of the nftables system tests do; nothing of the host's ruleset is changed).
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createCtx } from "../src/context.js";
import { defaultSettings } from "../src/host/settings.js";
import { problemLine } from "../src/problems.js";
import { inspectState } from "../src/state/check.js";
import { registry } from "./registry.js";

const file = (plugins: Record<string, unknown>) => ({ version: 1, plugins });

describe("nft's parser in a throw-away namespace (op validate)", () => {
  const ctx = createCtx({ settings: defaultSettings });
  const nftables = (rules: string[], elements: string[] = []) => ({
    tables: [
      { family: "inet", name: "opv_absent", ensure: "absent" },
      {
        family: "inet",
        name: "opv_check",
        sets: [{ name: "s", type: "ipv4_addr", elements }],
        chains: [{ name: "input", type: "filter", hook: "input", priority: 0, rules }],
      },
    ],
  });
  const ruleset = () => execFileSync("nft", ["list", "ruleset"], { encoding: "utf8" });

  it("reports every rule and element nft refuses at its JSON path, touching no host table", async () => {
    const before = ruleset();
    const checked = await inspectState(
      file({
        nftables: nftables(
          ["tcp dport 22 acept", "ip saddr @s accept", "udp dport 53 acept"],
          ["198.18.0.1", "198.18.0.300"],
        ),
      }),
      registry,
      { tools: ctx },
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/nftables/tables/1/chains/0/rules/0",
      "/plugins/nftables/tables/1/chains/0/rules/2",
      "/plugins/nftables/tables/1/sets/0/elements/1",
    ]);
    expect(checked.problems[0]?.message).toMatch(
      /^nft refused table inet\/opv_check, chain input, rule "tcp dport 22 acept": /,
    );
    expect(checked.warnings).toEqual([]);
    expect(ruleset()).toBe(before);
    expect(ruleset()).not.toContain("opv_check");
  });

  it("checks the rules the schema accepts when it refuses another, at the file's paths", async () => {
    const section = nftables(["tcp dport 22 accept", "udp dport 53 acept"]);
    const chain = section.tables[1]?.chains?.[0] as { rules: unknown[] };
    chain.rules.unshift(22);
    const checked = await inspectState(file({ nftables: section }), registry, { tools: ctx });
    expect(checked.problems.map(problemLine)).toEqual([
      "/plugins/nftables/tables/1/chains/0/rules/0: must be of type string",
      expect.stringMatching(
        /^\/plugins\/nftables\/tables\/1\/chains\/0\/rules\/2: nft refused table inet\/opv_check, chain input, rule "udp dport 53 acept": /,
      ),
    ]);
  });

  it("accepts rules nft accepts, and runs only when asked", async () => {
    const good = await inspectState(
      file({ nftables: nftables(["tcp dport { 22, 80 } accept", "ip saddr @s drop"]) }),
      registry,
      { tools: ctx },
    );
    expect(good.problems).toEqual([]);
    const typo = file({ nftables: nftables(["tcp dport 22 acept"]) });
    expect((await inspectState(typo, registry)).problems).toEqual([]);
  });

  it("is skipped when the code checks refuse the section (no script is written from it)", async () => {
    const checked = await inspectState(
      file({ nftables: nftables(["accept; flush ruleset"]) }),
      registry,
      {
        tools: ctx,
      },
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/nftables/tables/1/chains/0/rules/0",
    ]);
    expect(checked.problems[0]?.message).toMatch(/`;`/);
  });

  it("warns, rather than fails, when nft cannot be run", async () => {
    const noNft = createCtx({ settings: defaultSettings });
    const run = noNft.exec.run.bind(noNft.exec);
    noNft.exec = {
      ...noNft.exec,
      run: (program, args, options) =>
        // nsenter finds no nft: what a host without nftables answers.
        program === "nsenter"
          ? run(program, [...args.slice(0, 1), "opv-no-such-program", ...args.slice(2)], options)
          : run(program, args, options),
    };
    const checked = await inspectState(
      file({ nftables: nftables(["tcp dport 22 acept"]) }),
      registry,
      {
        tools: noNft,
      },
    );
    expect(checked.problems).toEqual([]);
    expect(checked.warnings.map(problemLine)).toEqual([
      "/plugins/nftables: nft did not check the rules: nft is not installed or not on PATH (op validate runs nft in a throw-away network namespace, which needs root; op plan checks them too)",
    ]);
  });
});
