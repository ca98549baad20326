import { configDefaults, defineConfig } from "vitest/config";

/**
 * Two projects, told apart by the test file's name (the rule is in the README's contributing
 * section):
 * - `unit` (npm run test:unit): every `*.test.ts` that needs no root, no daemon (Incus, OVSDB),
 *   no network namespace and no built op: pure logic, fixtures, temporary directories. It passes
 *   as an ordinary user on a host without Incus or Open vSwitch.
 * - `system` (npm run test:system): every `*.system.test.ts`, wherever it lives: real Incus,
 *   Open vSwitch, nft and ip in namespaces, the built op, mounts, chown. Run as root after
 *   scripts/setup.sh.
 * scripts/test.sh runs both.
 */
export const testRoots = ["src/**/*.test.ts", "plugins/**/*.test.ts", "test/**/*.test.ts"];
export const systemPattern = "**/*.system.test.ts";

export default defineConfig({
  test: {
    // A system test can wait on Incus or a slow `ip` under load; the unit tests finish in
    // well under this, which only stops one that hangs.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: testRoots,
          exclude: [...configDefaults.exclude, systemPattern],
        },
      },
      {
        extends: true,
        // System test files run in parallel: each test owns uniquely prefixed namespaces,
        // links, tables and containers, so they share the kernel's state safely.
        test: { name: "system", include: [systemPattern] },
      },
    ],
  },
});
