/**
 * The hostile corpus's cases: test/hostile/cases/<area>/<name>.json (or .yaml/.yml) beside
 * <name>.expect, whose first line is the JSON path (or text) op's stderr must contain, whose
 * optional second line is a fragment of the message, and where a line `needs: plan` says the
 * case is refused only by `op plan` (it needs the host), `needs: apply` that it is a plan
 * file, which only `op apply` reads. Every area folder is read.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, extname, join } from "node:path";

const casesDir = join(import.meta.dirname, "cases");
const stateExtensions = [".json", ".yaml", ".yml"];
export interface HostileCase {
  area: string;
  name: string;
  file: string;
  expectedPath: string;
  fragment: string | undefined;
  command: "validate" | "plan" | "apply";
}

/** Every case of every area folder; a state file without its .expect (or the reverse) throws. */
export function loadCases(root = casesDir): HostileCase[] {
  const cases: HostileCase[] = [];
  for (const area of readdirSync(root, { withFileTypes: true })) {
    if (!area.isDirectory()) continue;
    const dir = join(root, area.name);
    const files = readdirSync(dir);
    for (const file of files) {
      const extension = extname(file);
      const name = basename(file, extension);
      if (extension === ".expect") {
        if (!stateExtensions.some((ext) => files.includes(`${name}${ext}`)))
          throw new Error(`${area.name}/${file} has no state file beside it`);
        continue;
      }
      if (!stateExtensions.includes(extension)) throw new Error(`${area.name}/${file}: not a case`);
      const expectFile = join(dir, `${name}.expect`);
      if (!existsSync(expectFile)) throw new Error(`${area.name}/${file} has no ${name}.expect`);
      const lines = readFileSync(expectFile, "utf8")
        .split("\n")
        .filter((line) => line.trim() !== "");
      const marker = (line: string) => /^needs:\s*(plan|apply)\s*$/.test(line);
      const [expectedPath, fragment] = lines.filter((line) => !marker(line));
      const needs = lines
        .find(marker)
        ?.replace(/^needs:\s*/, "")
        .trim();
      if (expectedPath === undefined) throw new Error(`${area.name}/${name}.expect is empty`);
      cases.push({
        area: area.name,
        name,
        file: join(dir, file),
        expectedPath,
        fragment,
        command: needs === "plan" || needs === "apply" ? needs : "validate",
      });
    }
  }
  return cases.sort((a, b) => `${a.area}/${a.name}`.localeCompare(`${b.area}/${b.name}`));
}
