import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "plugins/**/*.test.ts", "test/**/*.test.ts"],
    // System tests share the kernel's nftables and netns state; files run in parallel
    // but each test owns uniquely prefixed namespaces, so this stays safe.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
