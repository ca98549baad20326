import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OpError } from "./errors.js";
import { createRunner, followLines } from "./exec.js";
import { isOutcomeUnknown } from "./outcome.js";

describe("createRunner", () => {
  const runner = createRunner();

  it("feeds stdin and collects stdout, stderr and the exit code", async () => {
    const result = await runner.run("sh", ["-c", "cat; echo oops >&2; exit 3"], {
      input: "hello",
      check: false,
    });
    expect(result).toEqual({ stdout: "hello", stderr: "oops\n", exitCode: 3 });
  });

  it("throws a command-failed error naming the command and its stderr", async () => {
    const error = await runner
      .run("sh", ["-c", "echo bad thing >&2; exit 2"])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("command-failed");
    expect((error as OpError).message).toBe(
      "sh -c echo bad thing >&2; exit 2 exited with 2: bad thing",
    );
  });

  it("lets a command write more than a pipe holds while op's thread is busy", async () => {
    // Through a pipe the command would stop at 64 KiB until the blocked thread drained it, so
    // it could not finish before the block ends; its output goes to a file, so it can.
    const bytes = 2_000_000;
    const pending = runner.run("sh", ["-c", `head -c ${bytes} /dev/zero; date +%s%3N >&2`]);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
    const blockEnded = Date.now();
    const result = await pending;
    expect(result.stdout.length).toBe(bytes);
    expect(Number(result.stderr.trim())).toBeLessThan(blockEnded);
  });

  it("says where it found no room for a command's output", async () => {
    const nowhere = createRunner({ outputDirs: ["/nonexistent-op-dir"] });
    const error = await nowhere.run("true", []).catch((e: unknown) => e);
    expect((error as OpError).code).toBe("command-failed");
    expect((error as OpError).message).toBe(
      "no temporary file for a command's output in /nonexistent-op-dir (ENOENT)",
    );
  });

  it("passes arguments without a shell, so shell characters stay inert", async () => {
    const result = await runner.run("printf", ["%s", "$(touch /tmp/op-should-not-exist); `id`"]);
    expect(result.stdout).toBe("$(touch /tmp/op-should-not-exist); `id`");
  });

  it("says which tool is missing", async () => {
    const error = await runner.run("op-no-such-tool", []).catch((e: unknown) => e);
    expect((error as OpError).code).toBe("tool-missing");
    expect((error as OpError).message).toContain("op-no-such-tool is not installed");
  });

  it("kills a command that outlives its timeout", async () => {
    const error = await runner.run("sleep", ["5"], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect((error as OpError).message).toBe("sleep 5 did not finish within 0.1 s and was killed");
    expect((error as OpError).hint).toContain("OP_COMMAND_TIMEOUT");
    // It may have done part of its work: the engine records `unknown`, not `failed`.
    expect(isOutcomeUnknown(error)).toBe(true);
  });

  it("gives every command a timeout, even when its caller names none (OP_COMMAND_TIMEOUT)", async () => {
    // A child that never exits: without a default timeout this run would never return.
    const bounded = createRunner({ timeoutSeconds: 0.2 });
    const started = Date.now();
    const error = await bounded.run("sleep", ["600"]).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((error as OpError).message).toBe("sleep 600 did not finish within 0.2 s and was killed");
  });

  it("gives commands op's environment in the C locale, glibc's tunables included", async () => {
    const seen = async () => {
      const lines = (await runner.run("env", [])).stdout.split("\n");
      return lines.filter((line) => /^(GLIBC_TUNABLES|LC_ALL)=/.test(line));
    };
    const saved = process.env.GLIBC_TUNABLES;
    try {
      // A user's own tunables are theirs: passed on as they are.
      process.env.GLIBC_TUNABLES = "glibc.malloc.hugetlb=1";
      expect((await seen()).sort()).toEqual(["GLIBC_TUNABLES=glibc.malloc.hugetlb=1", "LC_ALL=C"]);
    } finally {
      if (saved === undefined) delete process.env.GLIBC_TUNABLES;
      else process.env.GLIBC_TUNABLES = saved;
    }
  });
});

describe("followLines", () => {
  /** The lines a command printed, and the error its stream ended with. */
  function follow(command: string, args: string[]): Promise<{ lines: string[]; error: unknown }> {
    const lines: string[] = [];
    return new Promise((resolve) => {
      followLines(command, args).subscribe({
        next: (line) => lines.push(line),
        error: (error: unknown) => resolve({ lines, error }),
      });
    });
  }

  it("passes whole lines across chunks and errors, naming the command, when it exits", async () => {
    const { lines, error } = await follow("sh", [
      "-c",
      "printf 'a\\nb'; sleep 0.05; printf 'c\\n'; echo gone >&2; exit 4",
    ]);
    expect(lines).toEqual(["a", "bc"]);
    expect((error as OpError).message).toMatch(/^sh -c .* stopped \(4\): gone$/);
  });

  it("says which tool is missing", async () => {
    const { error } = await follow("op-no-such-tool", []);
    expect((error as OpError).code).toBe("tool-missing");
  });

  it("kills the command on unsubscribe", async () => {
    const subscription = followLines("sleep", ["30"]).subscribe({ error: () => {} });
    const sleeping = () =>
      readdirSync("/proc")
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
            return / \(sleep\) \S+ (\d+) /.exec(stat)?.[1] === String(process.pid);
          } catch {
            return false;
          }
        });
    expect(sleeping()).toHaveLength(1);
    subscription.unsubscribe();
    await expect.poll(sleeping).toEqual([]);
  });
});
