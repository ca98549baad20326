import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { thrown } from "../test/support/errors.js";
import { type CacheOptions, openCache } from "./cache.js";
import { cacheOptions, openCacheIn, quiet } from "./cache.testing.js";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "ops-cache-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const options = (overrides: Partial<CacheOptions> = {}) => cacheOptions(home, overrides);
const open = (overrides: Partial<CacheOptions> = {}) => openCacheIn(home, overrides);

function entryFiles(): string[] {
  return readdirSync(join(home, "cache", "nftables")).map((name) =>
    join(home, "cache", "nftables", name),
  );
}

describe("the authenticated cache", () => {
  it("gives back what it stored for exactly the same input, and nothing for another", () => {
    const cache = open();
    cache.put("script A", "normalised A");
    expect(cache.get("script A")).toBe("normalised A");
    expect(open().get("script A")).toBe("normalised A");
    expect(cache.get("script B")).toBeUndefined();
  });

  it("ignores a planted or edited entry, and replaces it with a good one", () => {
    const cache = open();
    cache.put("script A", "normalised A");
    const [file] = entryFiles();
    const good = readFileSync(file as string, "utf8");
    const entry = JSON.parse(good) as { input: string; output: string; mac: string };

    // Someone without the key changes the output (what diff would compare), keeping the MAC...
    writeFileSync(file as string, JSON.stringify({ ...entry, output: "policy accept" }));
    expect(cache.get("script A")).toBeUndefined();
    // ...or moves a genuine entry of another input to this input's name.
    cache.put("script B", "normalised B");
    const [other] = entryFiles().filter((f) => f !== file);
    writeFileSync(file as string, readFileSync(other as string));
    expect(cache.get("script A")).toBeUndefined();
    // ...or writes an entry of their own with a MAC under another key.
    rmSync(join(home, "keys", "cache.key"));
    open().put("script A", "forged A");
    const forged = readFileSync(file as string, "utf8");
    writeFileSync(join(home, "keys", "cache.key"), `${"00".repeat(32)}\n`, { mode: 0o600 });
    expect(open().get("script A")).toBeUndefined();
    expect(forged).not.toBe(good);

    open().put("script A", "normalised A");
    expect(open().get("script A")).toBe("normalised A");
  });

  it("makes its directory 0700 and its key and entries 0600 even under umask 000", () => {
    const old = process.umask(0);
    try {
      open().put("script A", "normalised A");
    } finally {
      process.umask(old);
    }
    const mode = (path: string) => statSync(path).mode & 0o777;
    expect(mode(join(home, "cache"))).toBe(0o700);
    expect(mode(join(home, "cache", "nftables"))).toBe(0o700);
    expect(mode(join(home, "keys", "cache.key"))).toBe(0o600);
    expect(entryFiles().map(mode)).toEqual([0o600]);
  });

  it("refuses a cache directory others may write", () => {
    mkdirSync(join(home, "cache"), { mode: 0o777 });
    chmodSync(join(home, "cache"), 0o777);
    expect(thrown(() => open()).message).toMatch(
      /cache: the cache directory may be written by others \(mode 0777\)/,
    );
  });

  it("refuses a key others may read, and never reads or writes a key through a symlink", () => {
    open().put("script A", "normalised A");
    const keyFile = join(home, "keys", "cache.key");
    chmodSync(keyFile, 0o644);
    expect(thrown(() => open()).message).toContain(
      "the cache key may be read by others (mode 0644)",
    );

    rmSync(keyFile);
    writeFileSync(join(home, "elsewhere"), `${"11".repeat(32)}\n`, { mode: 0o600 });
    symlinkSync(join(home, "elsewhere"), keyFile);
    const warnings: string[] = [];
    const log = { ...quiet, warn: (message: string) => warnings.push(message) };
    expect(openCache(options({ log }))).toBeUndefined();
    expect(warnings.join("\n")).toContain("it is a symlink");
    expect(readFileSync(join(home, "elsewhere"), "utf8")).toBe(`${"11".repeat(32)}\n`);
  });

  it("is off, not an error, without a directory or a key file", () => {
    expect(openCache(options({ dir: undefined }))).toBeUndefined();
    expect(openCache(options({ keyFile: undefined }))).toBeUndefined();
  });

  it("keeps the most recently used entries", () => {
    const cache = open();
    for (let i = 0; i < 6; i++) cache.put(`script ${i}`, `out ${i}`);
    expect(entryFiles()).toHaveLength(4);
    expect(cache.get("script 5")).toBe("out 5");
    expect(cache.get("script 0")).toBeUndefined();
  });
});
