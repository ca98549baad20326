import { defineConfig } from "vitest/config";

/**
 * The tests StrykerJS runs (stryker.config.json): every test beside the code in src/ and
 * plugins/, unit and system alike. Some system ones kill mutants the unit tests cannot: the
 * nftables ownership and fixture diffs (plugins/nftables/*.system.test.ts) load real tables in
 * a namespace, and the ledger's key and opening checks need root. test/ is left out: those
 * tests drive the built op, which mutation testing does not rebuild. Run as root.
 */
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "plugins/**/*.test.ts"],
    // A mutant can leave a promise pending forever; failing the test after 5 s (the slowest
    // of these tests takes under 2) kills it without a worker restart.
    testTimeout: 5_000,
    hookTimeout: 5_000,
    // Stryker runs the tests in a 0700 copy of the tree, which the one test that opens the
    // ledger as user nobody cannot enter; it runs in every ordinary run.
    testNamePattern: /^(?!.*as permission denied$)/,
  },
});
