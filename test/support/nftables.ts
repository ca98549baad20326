/**
 * A runner for the nftables plugin in a test's network namespace. op's throw-away namespaces
 * (`op-nftcheck-*`, see plugins/nftables/prepare.ts) are named in /run/netns, and `ip netns
 * exec` gives every command a mount namespace of its own where that name would vanish as soon
 * as `ip netns add` exits; they are separate from the test's namespace whoever starts them, so
 * the commands that make, enter and delete them run as op runs them. Everything else (the
 * live ruleset, `nft -f` on it) runs inside the test's namespace.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRunner, type Runner } from "../../src/exec.js";

export function nftablesRunner(netns: string, record?: (command: string) => void): Runner {
  const host = createRunner();
  const inner = createRunner({ netns });
  return {
    netns,
    run(command, args, options) {
      record?.([command, ...args].join(" "));
      const throwaway = command === "nsenter" || args.some((arg) => arg.startsWith("op-nftcheck-"));
      return (throwaway ? host : inner).run(command, args, options);
    },
  };
}

/**
 * Writes `dir/name`: a state file whose one inet table has an input chain (policy accept) with
 * one rule. The ledger tests apply such files to make small, real changes.
 */
export function writeOneRuleState(dir: string, name: string, table: string, rule: string): string {
  const path = join(dir, name);
  const chain = { name: "input", type: "filter", hook: "input", priority: 0, policy: "accept" };
  const tables = [{ family: "inet", name: table, chains: [{ ...chain, rules: [rule] }] }];
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { nftables: { tables } } }));
  return path;
}
