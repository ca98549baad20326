import { defineConfig } from "vitest/config";

// The tests beside the code (src/, plugins/): no built op, no Incus, no Open vSwitch. Some run
// nft or ip in a throw-away namespace, so they need root. Mutation testing runs these.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "plugins/**/*.test.ts"],
    testTimeout: 60_000,
    // Stryker runs the tests in a 0700 copy of the tree, which the one test that opens the
    // ledger as user nobody cannot enter; it runs in every ordinary run.
    testNamePattern: process.env.STRYKER ? /^(?!.*as permission denied$)/ : undefined,
  },
});
