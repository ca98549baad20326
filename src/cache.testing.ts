/** What the cache's unit and system tests share: a cache opened in a test's temporary home. */
import { join } from "node:path";
import { type Cache, type CacheOptions, openCache } from "./cache.js";

/** A log that prints nothing. */
export const quiet = { debug() {}, info() {}, warn() {} };

/** The options of a cache whose directory and key file are in `home`. */
export function cacheOptions(home: string, overrides: Partial<CacheOptions> = {}): CacheOptions {
  return {
    dir: join(home, "cache"),
    keyFile: join(home, "keys", "cache.key"),
    name: "nftables",
    maxEntries: 4,
    log: quiet,
    ...overrides,
  };
}

export function openCacheIn(home: string, overrides: Partial<CacheOptions> = {}): Cache {
  const cache = openCache(cacheOptions(home, overrides));
  if (cache === undefined) throw new Error("expected a cache");
  return cache;
}
