/**
 * The ledger system tests' sandbox: the built op with its ledger, key and lock in a temporary
 * directory (test/support/cli.ts), whose applies change one nftables table in a network
 * namespace of the test's own (test/support/netns.ts), never the host's ruleset.
 */
import { type CliResult, type CliSandbox, createCliSandbox } from "./cli.js";
import { createNetns, type TestNetns } from "./netns.js";
import { writeOneRuleState } from "./nftables.js";

export interface LedgerSandbox {
  cli: CliSandbox;
  netns: TestNetns;
  /** Writes a state file whose one table (the sandbox's) has one rule. */
  stateFile(name: string, rule: string): string;
  /** Runs `op ARGS` in the namespace. */
  op(args: string[], env?: Record<string, string>): CliResult;
  /** The namespace's nftables ruleset. */
  ruleset(): string;
  remove(): void;
}

export function createLedgerSandbox(table: string): LedgerSandbox {
  const cli = createCliSandbox();
  const netns = createNetns("ledger");
  return {
    cli,
    netns,
    stateFile: (name, rule) => writeOneRuleState(cli.dir, name, table, rule),
    op: (args, env) => cli.op(args, { netns: netns.name, ...(env === undefined ? {} : { env }) }),
    ruleset: () => netns.run("nft", ["list", "ruleset"]),
    remove() {
      netns.remove();
      cli.cleanup();
    },
  };
}
