/** The live side: every net.* key of the namespace op runs in (one `sysctl net`). */
import type { Ctx } from "../../src/plugin.js";
import { readNetSysctls } from "./procsys.js";
import type { SysctlLive } from "./types.js";

export async function querySysctl(ctx: Ctx): Promise<SysctlLive> {
  return { values: await readNetSysctls(ctx.exec) };
}
