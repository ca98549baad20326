/**
 * Checking a whole file with the real plugins: the schemas and every plugin's check at once,
 * and (for `op validate`) nft's own parser in a throw-away network namespace (needs root and
 * nft, as the rest of the nftables tests do; nothing of the host's ruleset is read).
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createCtx } from "../src/context.js";
import { OpError } from "../src/errors.js";
import { defaultSettings } from "../src/host/settings.js";
import { problemLine } from "../src/problems.js";
import { checkState, inspectState } from "../src/state/check.js";
import { registry } from "./registry.js";

const file = (plugins: Record<string, unknown>) => ({ version: 1, plugins });

describe("inspectState", () => {
  it("reports a schema problem and a plugin check's problem of the same section at once", async () => {
    const checked = await inspectState(
      file({
        network: {
          interfaces: [
            {
              name: "opv0",
              type: "linux-bridge",
              mtu: 70000,
              ipv4: { address: ["198.18.0.1/40"] },
            },
          ],
        },
      }),
      registry,
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/0/mtu",
      "/plugins/network/interfaces/0/ipv4/address/0",
    ]);
    expect(checked.problems[1]?.message).toMatch(/invalid IPv4 CIDR "198\.18\.0\.1\/40"/);
  });

  it("runs every plugin's check whatever another section's schema says", async () => {
    const checked = await inspectState(
      file({
        network: { interfaces: [{ name: "opv0", type: "dummy", mtu: "big" }] },
        nftables: {
          tables: [
            { family: "inet", name: "opv_t", chains: [{ name: "c" }, { name: "c" }] },
            { family: "inet", name: "opv_t" },
          ],
        },
        lxc: { containers: [{ id: 1 }, { id: 1 }] },
      }),
      registry,
    );
    const lines = checked.problems.map(problemLine);
    expect(lines).toContain("/plugins/network/interfaces/0/mtu: must be of type integer");
    expect(lines).toContain('/plugins/nftables/tables/0/chains/1/name: chain "c" is given twice');
    expect(lines).toContain("/plugins/nftables/tables/1: table inet/opv_t is given twice");
    expect(lines.some((line) => line.startsWith("/plugins/lxc/containers/1"))).toBe(true);
  });

  it("checks the rest of a section whose array item the schema refused, at the file's paths", async () => {
    const checked = await inspectState(
      file({
        network: {
          interfaces: [
            { name: "opv0" },
            { name: "opv1", type: "dummy", ipv4: { address: ["198.18.0.1/40"] } },
          ],
        },
      }),
      registry,
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/0",
      "/plugins/network/interfaces/1/ipv4/address/0",
    ]);
  });

  it("returns a plugin's warnings beside its problems", async () => {
    const checked = await inspectState(
      file({ lxc: { containers: [{ id: 100, properties: { opv_unused: 1 } }] }, x: {} }),
      registry,
    );
    expect(checked.warnings.map((w) => w.path)).toEqual([
      "/plugins/lxc/containers/0/properties/opv_unused",
    ]);
  });
});

describe("checkState", () => {
  it("throws invalid-file naming every problem, after giving the warnings", async () => {
    const warned: string[] = [];
    const error = await checkState(
      file({
        lxc: { containers: [{ id: 100, properties: { opv_unused: 1 } }, { id: 100 }] },
        nftables: { tables: [{ family: "inet", name: "opv_t", chians: [] }] },
      }),
      "f.json",
      registry,
      (warning) => warned.push(problemLine(warning)),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("invalid-file");
    expect((error as OpError).details).toContain(
      '/plugins/nftables/tables/0: unknown field "chians"; did you mean "chains"?',
    );
    expect(warned).toHaveLength(1);
  });
});

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
