/** The live side: one `nft -j -s list ruleset` (stateless, so counters and quotas never drift). */
import { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { parseRuleset } from "./parse.js";
import type { NftLive } from "./types.js";

const listArgs = ["-j", "-s", "list", "ruleset"];

export async function queryNftables(ctx: Ctx): Promise<NftLive> {
  const result = await ctx.exec.run("nft", listArgs, { check: false });
  if (result.exitCode !== 0)
    throw nftFailed(`nft ${listArgs.join(" ")}`, result.stderr || result.stdout);
  return parseRuleset(result.stdout, `nft ${listArgs.join(" ")}`);
}

/** A failed nft (or ip netns, nsenter) run that is not about the file's content. */
export function nftFailed(command: string, output: string): OpError {
  const message = output.trim().split("\n")[0] ?? "";
  if (/Operation not permitted|Permission denied/.test(output)) {
    return new OpError("permission-denied", `${command}: ${message}`, {
      hint: "nftables needs root (CAP_NET_ADMIN, and CAP_SYS_ADMIN for op's throw-away namespaces)",
      context: { plugin: "nftables" },
    });
  }
  return new OpError("command-failed", `${command} failed: ${message || "no message"}`, {
    hint: "run `op doctor` to check the host's nftables",
    context: { plugin: "nftables" },
  });
}
