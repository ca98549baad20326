import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { expect, it } from "vitest";

const srcDir = import.meta.dirname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(entry.name) ? [path] : [];
  });
}

// The registry (plugins/registry.ts) is handed to src/ by the entry (bin/op.ts): src/ knows
// plugins only through the contract, so a new plugin never needs an edit under src/.
it("no file under src/ imports from plugins/, statically or dynamically", () => {
  const offenders = sourceFiles(srcDir).filter((file) =>
    /(?:from\s+|import\s*\(\s*|import\s+)["'](?:\.\.\/)+plugins\//.test(readFileSync(file, "utf8")),
  );
  expect(offenders.map((file) => relative(srcDir, file))).toEqual([]);
});
