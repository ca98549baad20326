/** Writes one key's value; a create (a link's key, the link made earlier in the run) too. */
import type { Ctx } from "../../src/plugin.js";
import { writeNetSysctl } from "./procsys.js";
import type { SysctlAction } from "./types.js";

export async function applySysctl(action: SysctlAction, ctx: Ctx): Promise<void> {
  if (action.kind === "delete") {
    throw new Error(`bug: the sysctl plugin never plans a delete (${action.id})`);
  }
  await writeNetSysctl(ctx.exec, action.id, action.after.value);
}
