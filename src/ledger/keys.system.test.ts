/** A key file another user owns is refused: the part of keys.test.ts that needs root (chown). */
import { chown } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { rejection as refusal } from "../../test/support/errors.js";
import { Ledger } from "./ledger.js";
import { removeTempDirs, keySandbox as setup, signedLedger as signed } from "./testing.js";

afterEach(removeTempDirs);

describe("the ledger key files", () => {
  it("a key owned by another user is refused", async () => {
    const { dir, keyFile } = await setup();
    await signed(dir, keyFile);
    await chown(keyFile, 65534, 65534);
    const error = await refusal(Ledger.open(dir, { keyFile }));
    expect(error.code).toBe("permission-denied");
    expect(error.message).toMatch(/belongs to uid 65534/);
  });
});
