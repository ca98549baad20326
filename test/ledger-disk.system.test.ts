/**
 * The built op with its ledger on a real small tmpfs that fills up: apply fails as an ordinary
 * error (exit 1, the path and a hint; never 70, "a bug in op") and changes nothing, and
 * `op ledger verify` still works, reading only. nftables changes happen in a network
 * namespace of the test's own (test/support/ledger.ts).
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLedgerSandbox, type LedgerSandbox } from "./support/ledger.js";

let box: LedgerSandbox;
let disk: string;

const stateFile = (name: string, rule: string) => box.stateFile(name, rule);
const ledger = () => join(disk, "ledger");
const op = (args: string[]) => box.op(args, { OP_LEDGER: ledger() });
const ruleset = () => box.ruleset();

/** Fills the tmpfs until it refuses another byte. */
function fill(): void {
  const fd = openSync(join(disk, "filler"), "w");
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 1));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(disk, `crumb-${i}`), "x");
    } catch {
      return;
    }
  }
}

beforeEach(() => {
  box = createLedgerSandbox("opl_disk");
  disk = join(box.cli.dir, "disk");
  mkdirSync(disk);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "opl-tmpfs", disk]);
});

afterEach(() => {
  execFileSync("umount", [disk]);
  box.remove();
});

describe("a ledger on a full disk", () => {
  it("apply fails with exit 1 naming the ledger and changes nothing; verify still works", () => {
    const first = op(["apply", stateFile("one.json", "ip saddr 198.18.2.1 drop")]);
    expect(first.status, first.stderr).toBe(0);
    fill();
    const before = ruleset();

    const verify = op(["ledger", "verify"]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/ledger OK: 3 records/);
    expect(op(["ledger", "log"]).stdout).toMatch(/ok +create +nftables inet\/opl_disk/);

    const second = op(["apply", stateFile("two.json", "ip saddr 198.18.2.2 drop")]);
    expect(second.status, second.stderr).toBe(1);
    expect(second.stderr).toContain(ledger());
    expect(second.stderr).toMatch(/full|ENOSPC/);
    expect(second.stderr).not.toMatch(/bug in op| {4}at /);
    expect(ruleset()).toBe(before);

    // With space again, the next apply goes on from the same, whole ledger.
    rmSync(join(disk, "filler"));
    const third = op(["apply", stateFile("two.json", "ip saddr 198.18.2.2 drop")]);
    expect(third.status, third.stderr).toBe(0);
    expect(op(["ledger", "verify"]).stdout).toMatch(/ledger OK: 6 records/);
  });
});
