import { describe, expect, it } from "vitest";
import { resolvePaths } from "./context.js";

describe("resolvePaths", () => {
  it("takes an empty variable as unset, never as the current directory", () => {
    const empty = { OP_LEDGER: "", OP_LEDGER_KEY: "", OP_LOCK: "", OP_CACHE_DIR: "" };
    expect(resolvePaths({}, empty)).toEqual(resolvePaths({}, {}));
    expect(resolvePaths({}, {}).ledgerDir).toBe("/var/lib/op/ledger");
  });

  it("keeps the cache key beside the ledger key", () => {
    expect(resolvePaths({}, { OP_LEDGER_KEY: "/srv/keys/ledger.key" }).cacheKeyFile).toBe(
      "/srv/keys/cache.key",
    );
    expect(resolvePaths({ keyFile: "/k/l.key" }, {}).cacheKeyFile).toBe("/k/cache.key");
  });
});
