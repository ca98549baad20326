/**
 * Opening a ledger as another user: the part of ledger.test.ts that needs root (a child
 * process that runs as nobody).
 */
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDirs, runLedgerChild } from "./testing.js";

afterEach(removeTempDirs);

describe("opening", () => {
  it("reports a directory the user may not write as permission denied", async () => {
    // A real unprivileged process (nobody) against root-owned 0700 directories.
    const locked = await makeTempDir("perm");
    const open = await makeTempDir("perm-open");
    await chmod(open, 0o777);
    const cases = [
      [join(locked, "ledger"), join(open, "unused.key")],
      [join(open, "ledger"), join(locked, "keys", "ledger.key")],
    ];
    const child = await runLedgerChild(
      `for (const [dir, keyFile] of ${JSON.stringify(cases)}) {
        try {
          const ledger = await Ledger.open(dir, { keyFile });
          print({ opened: true });
          await ledger.close();
        } catch (error) {
          print({ code: error.code, message: error.message });
        }
      }`,
      { uid: 65534, gid: 65534 },
    );
    expect(child.stderr).toBe("");
    const [ledgerDir, keyDir] = child.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(ledgerDir).toMatchObject({
      code: "permission-denied",
      message: expect.stringContaining(locked),
    });
    expect(keyDir).toMatchObject({
      code: "permission-denied",
      message: expect.stringContaining(join(locked, "keys", "ledger.key")),
    });
  });
});
