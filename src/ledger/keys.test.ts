/**
 * op's own key files: read and written without following symlinks, refused when another user
 * owns them or others may write their directory, and warned about when others may read them.
 * A key another user owns is in keys.system.test.ts (chown needs root).
 */
import { chmod, lstat, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { rejection as refusal } from "../../test/support/errors.js";
import { Ledger } from "./ledger.js";
import { removeTempDirs, keySandbox as setup, signedLedger as signed } from "./testing.js";

afterEach(removeTempDirs);

describe("the ledger key files", () => {
  it("a dangling symlink at the key path is a clear error at once (it used to spin forever)", async () => {
    const { dir, keyFile } = await setup();
    await symlink(join(dir, "..", "nowhere"), keyFile);
    const started = Date.now();
    const error = await refusal(Ledger.open(dir, { keyFile }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.code).toBe("file-error");
    expect(error.message).toContain(keyFile);
    expect(error.message).toMatch(/symlink/);
  });

  it("a symlink to a real key is refused too", async () => {
    const { root, dir, keyFile } = await setup();
    const real = join(root, "real.key");
    await signed(dir, real);
    await symlink(real, keyFile);
    expect((await refusal(Ledger.open(dir, { keyFile }))).message).toMatch(/symlink/);
  });

  it("never writes the public key through a symlink at ledger.key.pub", async () => {
    const { root, dir, keyFile } = await setup();
    const victim = join(root, "victim");
    await writeFile(victim, "precious\n", { mode: 0o600 });
    await symlink(victim, `${keyFile}.pub`);
    await signed(dir, keyFile);
    expect(await readFile(victim, "utf8")).toBe("precious\n");
    expect((await lstat(victim)).mode & 0o777).toBe(0o600);
    expect((await lstat(`${keyFile}.pub`)).isFile()).toBe(true);
    expect((await readFile(`${keyFile}.pub`, "utf8")).trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it("a key in a directory others may write is refused", async () => {
    const { dir, keyFile } = await setup();
    await signed(dir, keyFile);
    await chmod(join(keyFile, ".."), 0o777);
    const error = await refusal(Ledger.open(dir, { keyFile }));
    expect(error.code).toBe("permission-denied");
    expect(error.message).toMatch(/directory may be written by others \(mode 0777\)/);
  });

  it("verify warns about a key others may read, and still verifies", async () => {
    const { dir, keyFile } = await setup();
    await signed(dir, keyFile);
    await chmod(keyFile, 0o640);
    const reader = await Ledger.open(dir, { keyFile, create: false });
    const report = await reader.verify();
    await reader.close();
    expect(report).toMatchObject({ ok: true, size: 1 });
    expect(report.warnings).toEqual([
      expect.stringMatching(/ledger key .* is readable by other users \(mode 0640\)/),
    ]);
  });
});
