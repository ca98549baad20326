/**
 * A runner for the nftables plugin in a test's network namespace. op's throw-away namespaces
 * (`op-nftcheck-*`, see plugins/nftables/prepare.ts) are named in /run/netns, and `ip netns
 * exec` gives every command a mount namespace of its own where that name would vanish as soon
 * as `ip netns add` exits; they are separate from the test's namespace whoever starts them, so
 * the commands that make, enter and delete them run as op runs them. Everything else (the
 * live ruleset, `nft -f` on it) runs inside the test's namespace.
 */
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
