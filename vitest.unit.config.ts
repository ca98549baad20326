import { defineConfig } from "vitest/config";

// The tests beside the code (src/, plugins/): no built op, no Incus, no Open vSwitch. Some run
// nft or ip in a throw-away namespace, so they need root. Mutation testing runs these.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "plugins/**/*.test.ts"],
    // Under Stryker a mutant can leave a promise pending forever; failing the test after 5 s
    // (the slowest unit test takes under 2) kills it without a worker restart.
    testTimeout: process.env.STRYKER ? 5_000 : 60_000,
    hookTimeout: process.env.STRYKER ? 5_000 : 60_000,
    // Stryker runs the tests in a 0700 copy of the tree, which the one test that opens the
    // ledger as user nobody cannot enter; it runs in every ordinary run.
    testNamePattern: process.env.STRYKER ? /^(?!.*as permission denied$)/ : undefined,
  },
});
