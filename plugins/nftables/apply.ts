/**
 * One action = one atomic `nft -f -` transaction: a create or modify replaces the whole
 * table (add + delete + full definition), a delete removes it whether or not it exists. A
 * refused script changes nothing, and the error names the table, chain and rule it came from.
 */
import { OpError } from "../../src/errors.js";
import { type Ctx, unreachable } from "../../src/plugin.js";
import { nftFailed } from "./query.js";
import {
  carriesOwnerMark,
  deleteScript,
  describeProblem,
  locateErrors,
  notOwned,
  replaceScript,
  type Script,
} from "./script.js";
import { type NftAction, tableId } from "./types.js";
import { assertSafeTable } from "./validate.js";

export async function applyNftables(action: NftAction, ctx: Ctx): Promise<void> {
  const script = scriptFor(action);
  if (action.kind === "modify") await assertOwned(action, ctx);
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

/**
 * A modify replaces the whole table, so it must be op's: created by op (it carries op's
 * comment) or handed over with `adopt: true`. nft 1.0.6 leaves table comments out of its JSON,
 * so this reads the one table's text listing, and only on this path (a modify is rare).
 */
async function assertOwned(action: NftAction & { kind: "modify" }, ctx: Ctx): Promise<void> {
  const spec = action.after;
  // The engine refuses an adopt the file or --adopt does not allow; this guards the race after.
  if (spec.adopt === true || ctx.options.adopt === true) return;
  const listing = await ctx.exec.run("nft", ["list", "table", spec.family, spec.name], {
    check: false,
  });
  if (listing.exitCode !== 0) return; // gone meanwhile: the replacement creates it
  if (carriesOwnerMark(listing.stdout)) return;
  throw new OpError("invalid-state", notOwned(action.id, "replace"), {
    hint: `to hand the table to op, add "adopt": true to it in the file (or run with --adopt); its current contents will then be replaced`,
    context: { plugin: "nftables", phase: "apply", id: action.id },
  });
}

function scriptFor(action: NftAction): Script {
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
    case "delete":
      return deleteScript(action.before);
    default:
      return unreachable(action);
  }
}
