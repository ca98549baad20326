/** The cache refuses a directory another user owns: making one needs root (chown). */
import { chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { thrown } from "../test/support/errors.js";
import { openCacheIn } from "./cache.testing.js";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "ops-cache-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("the authenticated cache", () => {
  it("refuses a cache directory another user owns", () => {
    mkdirSync(join(home, "cache"), { mode: 0o700 });
    mkdirSync(join(home, "cache", "nftables"), { mode: 0o700 });
    chownSync(join(home, "cache", "nftables"), 65534, 65534);
    expect(thrown(() => openCacheIn(home)).message).toMatch(
      /nftables: the cache directory belongs to uid 65534/,
    );
  });
});
