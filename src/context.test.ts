import { describe, expect, it } from "vitest";
import { resolvePaths } from "./context.js";
import { loadSettings } from "./host/settings.js";

describe("resolvePaths", () => {
  it("takes an empty variable as unset, never as the current directory", () => {
    const empty = loadSettings({ OP_LEDGER: "", OP_LEDGER_KEY: "", OP_LOCK: "", OP_CACHE_DIR: "" });
    expect(resolvePaths(empty)).toEqual(resolvePaths(loadSettings({})));
    expect(resolvePaths(empty).ledgerDir).toBe("/var/lib/op/ledger");
  });

  it("keeps the cache key beside the ledger key", () => {
    const settings = loadSettings({ OP_LEDGER_KEY: "/srv/keys/ledger.key" });
    expect(resolvePaths(settings).cacheKeyFile).toBe("/srv/keys/cache.key");
    expect(resolvePaths(settings, { keyFile: "/k/l.key" }).cacheKeyFile).toBe("/k/cache.key");
  });
});
