/**
 * One action = one atomic `nft -f -` transaction: a create or modify replaces the whole
 * table (add + delete + full definition), a delete removes it whether or not it exists. A
 * refused script changes nothing, and the error names the table, chain and rule it came from.
 */
import { OpError } from "../../src/errors.js";
import { type Action, type Ctx, unreachable } from "../../src/plugin.js";
import { nftFailed } from "./query.js";
import {
  deleteScript,
  describeProblem,
  locateErrors,
  replaceScript,
  type Script,
} from "./script.js";
import { tableId } from "./types.js";
import { assertSafeTable } from "./validate.js";

export async function applyNftables(action: Action, ctx: Ctx): Promise<void> {
  const script = scriptFor(action);
  const result = await ctx.exec.run("nft", ["-f", "-"], { input: script.text, check: false });
  if (result.exitCode === 0) return;
  const output = result.stderr || result.stdout;
  if (/Operation not permitted/.test(output)) throw nftFailed("nft -f -", output);
  const problems = locateErrors(output, script);
  const first = problems[0];
  throw new OpError(
    "apply-failed",
    `nft refused ${first ? describeProblem(first) : `table ${action.id}`}`,
    {
      details: problems.length > 1 ? problems.map(describeProblem) : [],
      hint: "nft loads each table as one transaction, so nothing on the host changed; fix the state file and run again",
      context: { plugin: "nftables", phase: "apply", id: action.id },
    },
  );
}

function scriptFor(action: Action): Script {
  switch (action.kind) {
    case "create":
    case "modify": {
      const spec = assertSafeTable(action.after, action.id);
      if (tableId(spec) !== action.id) {
        throw new OpError("invalid-state", `action ${action.id} carries table ${tableId(spec)}`, {
          context: { plugin: "nftables", phase: "apply", id: action.id },
        });
      }
      return replaceScript(spec);
    }
    case "delete": {
      const slash = action.id.indexOf("/");
      return deleteScript({ family: action.id.slice(0, slash), name: action.id.slice(slash + 1) });
    }
    default:
      return unreachable(action);
  }
}
