/**
 * The checkpoint log on its own: what is appended, how it is split back into checkpoints
 * (whole, or from a tail read), and what it refuses to write to or read from.
 */
import { readdirSync } from "node:fs";
import { chmod, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { signCheckpoint } from "./checkpoint.js";
import {
  appendCheckpointLog,
  checkpointLogPath,
  lastLoggedCheckpoint,
  loggedCheckpoints,
} from "./checkpoint-log.js";
import { keygen } from "./ed25519.js";
import { Ledger } from "./ledger.js";
import { makeTempDir, removeTempDirs } from "./testing.js";

afterEach(removeTempDirs);

const key = keygen();
const checkpoint = (size: number, origin = "op@log") =>
  signCheckpoint({ origin, size, root: "ab".repeat(32), time: "2026-01-01T00:00:00.000Z" }, key);

async function logFile(): Promise<string> {
  return checkpointLogPath(join(await makeTempDir("log"), "ledger"));
}

function thrown(work: () => unknown): OpError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(OpError);
    return error as OpError;
  }
  throw new Error("nothing was thrown");
}

describe("appendCheckpointLog", () => {
  it("lives beside the ledger directory", () => {
    expect(checkpointLogPath("/var/lib/op/ledger")).toBe("/var/lib/op/ledger.checkpoints");
  });

  it("creates the log private to op's user, and appends each checkpoint whole", async () => {
    const log = await logFile();
    appendCheckpointLog(log, checkpoint(1));
    expect((await stat(log)).mode & 0o777).toBe(0o600);
    appendCheckpointLog(log, checkpoint(2));
    expect(await readFile(log, "utf8")).toBe(checkpoint(1) + checkpoint(2));
  });

  it("ends an entry that lacks its final newline with one, so the next starts on its line", async () => {
    const log = await logFile();
    appendCheckpointLog(log, checkpoint(1).trimEnd());
    appendCheckpointLog(log, checkpoint(2));
    expect(await readFile(log, "utf8")).toBe(checkpoint(1) + checkpoint(2));
    expect(loggedCheckpoints(log)).toEqual([checkpoint(1), checkpoint(2)]);
  });

  it("refuses a log others may write", async () => {
    const log = await logFile();
    await writeFile(log, checkpoint(1), { mode: 0o666 });
    await chmod(log, 0o666);
    const error = thrown(() => appendCheckpointLog(log, checkpoint(2)));
    expect(error.code).toBe("permission-denied");
    expect(error.message).toBe(`${log}: the checkpoint log may be written by others (mode 0666)`);
    expect(await readFile(log, "utf8")).toBe(checkpoint(1));
  });

  it("refuses a symlink in the log's place", async () => {
    const log = await logFile();
    const elsewhere = `${log}.elsewhere`;
    await writeFile(elsewhere, "");
    await symlink(elsewhere, log);
    const error = thrown(() => appendCheckpointLog(log, checkpoint(1)));
    expect(error.message).toMatch(`${log}: cannot append to the checkpoint log: `);
    expect(error.message).toMatch(/\(ELOOP\)$/);
    expect(await readFile(elsewhere, "utf8")).toBe("");
  });
});

describe("reading the checkpoint log", () => {
  it("is undefined without a log (none, or a path under a file), and empty for an empty log", async () => {
    const log = await logFile();
    expect(lastLoggedCheckpoint(log)).toBeUndefined();
    expect(loggedCheckpoints(log)).toBeUndefined();
    await writeFile(log, "");
    expect(lastLoggedCheckpoint(log)).toBe("");
    expect(loggedCheckpoints(log)).toEqual([]);
    expect(lastLoggedCheckpoint(join(log, "under"))).toBeUndefined();
    expect(loggedCheckpoints(join(log, "under"))).toBeUndefined();
  });

  it("gives every checkpoint, and the last one", async () => {
    const log = await logFile();
    for (const size of [1, 2, 3]) appendCheckpointLog(log, checkpoint(size));
    expect(loggedCheckpoints(log)).toEqual([checkpoint(1), checkpoint(2), checkpoint(3)]);
    expect(lastLoggedCheckpoint(log)).toBe(checkpoint(3));
  });

  it("keeps a torn last entry as it is (the tail check and verify refuse it)", async () => {
    const log = await logFile();
    const torn = checkpoint(2).slice(0, 60);
    await writeFile(log, checkpoint(1) + torn);
    expect(loggedCheckpoints(log)).toEqual([checkpoint(1), torn]);
    expect(lastLoggedCheckpoint(log)).toBe(torn);
  });

  it("keeps text before the first checkpoint as an entry (an altered one, which verify names)", async () => {
    const log = await logFile();
    const altered = checkpoint(1).replace("op ledger checkpoint", "op ledger checkpoinx");
    await writeFile(log, altered + checkpoint(2));
    expect(loggedCheckpoints(log)).toEqual([altered, checkpoint(2)]);
    await writeFile(log, altered);
    expect(loggedCheckpoints(log)).toEqual([altered]);
    expect(lastLoggedCheckpoint(log)).toBe(altered);
    await writeFile(log, `\n${checkpoint(1)}`);
    expect(loggedCheckpoints(log)).toEqual(["\n", checkpoint(1)]);
  });

  it("finds the last checkpoint of a log far larger than the tail it reads", async () => {
    const log = await logFile();
    const all = Array.from({ length: 300 }, (_, i) => checkpoint(i + 1));
    await writeFile(log, all.join(""));
    expect((await stat(log)).size).toBeGreaterThan(4 * 16 * 1024);
    expect(lastLoggedCheckpoint(log)).toBe(all.at(-1));
    expect(loggedCheckpoints(log)).toEqual(all);
  });

  it("finds a last checkpoint longer than the tail it reads first (a long origin)", async () => {
    const log = await logFile();
    const long = (size: number) => checkpoint(size, `op@${"x".repeat(40_000)}`);
    await writeFile(log, long(1) + long(2));
    expect(lastLoggedCheckpoint(log)).toBe(long(2));
  });

  it("closes the log after reading it", async () => {
    const log = await logFile();
    appendCheckpointLog(log, checkpoint(1));
    const open = () => readdirSync("/proc/self/fd").length;
    const before = open();
    for (let i = 0; i < 5; i++) {
      lastLoggedCheckpoint(log);
      loggedCheckpoints(log);
    }
    expect(open()).toBe(before);
  });

  it("refuses a symlink or a directory in the log's place", async () => {
    const log = await logFile();
    await symlink("/etc/hostname", log);
    for (const read of [lastLoggedCheckpoint, loggedCheckpoints]) {
      const error = thrown(() => read(log));
      expect(error.message).toMatch(`${log}: cannot read the checkpoint log: `);
      expect(error.message).toMatch(/\(ELOOP\)$/);
    }
    const directory = await logFile();
    await mkdir(directory);
    for (const read of [lastLoggedCheckpoint, loggedCheckpoints]) {
      expect(thrown(() => read(directory)).message).toMatch(
        new RegExp(`^${directory}: cannot read the checkpoint log: .*\\(EISDIR\\)$`),
      );
    }
  });

  it("lets a ledger with a long origin be extended after its second checkpoint", async () => {
    const root = await makeTempDir("log");
    const options = { keyFile: join(root, "ledger.key"), origin: `op@${"x".repeat(20_000)}` };
    const dir = join(root, "ledger");
    const ledger = await Ledger.open(dir, options);
    for (const target of ["a", "b"]) {
      await ledger.append({ run: "r", plugin: "p", action: "create", target, status: "ok" });
      await ledger.checkpoint();
    }
    await ledger.close();
    const again = await Ledger.open(dir, options);
    await again.append({ run: "r", plugin: "p", action: "create", target: "c", status: "ok" });
    expect(await again.verify()).toMatchObject({ ok: true, size: 3, checkpoints: 2 });
    await again.close();
  });
});
