/** What the file alone gets wrong in a sysctl section (the schema has checked its form). */
import type { CheckReport, Problem } from "../../src/plugin.js";
import { escapePointer } from "../../src/state/validate.js";
import { keyProblem, looksOctal, valueText } from "./keys.js";
import type { SysctlSection } from "./types.js";

export function checkSysctl(section: unknown, path: string): CheckReport {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const settings = (section as SysctlSection | undefined)?.settings ?? {};
  for (const [key, value] of Object.entries(settings)) {
    const at = `${path}/settings/${escapePointer(key)}`;
    const problem = keyProblem(key);
    if (problem !== undefined) problems.push({ path: at, ...problem });
    else if (value !== undefined && looksOctal(valueText(value))) {
      warnings.push({
        path: at,
        message: `"${value}" has a leading zero: the kernel reads it as an octal number`,
        hint: "write the number without the leading zero",
      });
    }
  }
  return { problems, warnings };
}
