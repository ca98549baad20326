/** Test support for the host layer: a fixture tree laid out as the host's root. */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/**
 * A new directory under the temporary one holding `files` (absolute path as on the host →
 * text) and `links` (path → symlink target); returns it, for `createSys(root)`. The caller
 * removes it.
 */
export function fixtureTree(
  files: Record<string, string>,
  links: Record<string, string> = {},
): string {
  const root = mkdtempSync(join(tmpdir(), "op-sys-fixture-"));
  const place = (path: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    return join(root, path);
  };
  for (const [path, text] of Object.entries(files)) writeFileSync(place(path), text);
  for (const [path, target] of Object.entries(links)) symlinkSync(target, place(path));
  return root;
}
