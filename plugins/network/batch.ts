/**
 * Group commit for netlink changes: the engine applies independent actions concurrently, and
 * every action that reaches `submit` while another `ip -batch` process is running (or in the
 * same turn of the event loop) joins the next one. So a run starts a few `ip` processes, not
 * one per link, while each action still succeeds or fails on its own.
 *
 * `ip -batch` stops at the first failing line and names it (`Command failed -:N`): the lines
 * before it are applied, that line's action fails with the kernel's message, and the other
 * actions go on in the next process.
 */
import { OpError } from "../../src/errors.js";
import type { Runner } from "../../src/exec.js";

export interface IpLine {
  /** One `ip -batch` line, e.g. `link set br0 up`. */
  text: string;
  /** An error that means "already so" (e.g. deleting a link that is gone): the line counts as done. */
  tolerate?: RegExp;
}

/** A word ip's batch reader takes as it is: printable ASCII, no quote, "#" or backslash. */
const bareWord = /^[!$-&(-[\]-~]+$/;

/**
 * One argument of an `ip -batch` line, written so that ip reads back exactly `text`. ip's batch
 * reader (getcmdline and makeargs in iproute2's lib/utils.c) cuts a line at its first "#", even
 * inside quotes, splits words at whitespace, and takes a word that starts with a quote up to
 * the next same quote, with no escapes. So a word with whitespace is double-quoted, and a text
 * that no quoting can carry ("#", a line break, a double quote) is refused here; the schema
 * refuses those in names and aliases first, with their JSON path, so this is the last line.
 */
export function ipWord(text: string): string {
  if (bareWord.test(text)) return text;
  if ([...text].some((c) => c === '"' || c === "#" || c < " " || c === "\u007f")) {
    throw new OpError("invalid-state", `${JSON.stringify(text)} cannot be written to ip -batch`, {
      hint: 'names and aliases may not hold "#", a double quote or control characters',
    });
  }
  return `"${text}"`;
}

interface Job {
  id: string;
  lines: IpLine[];
  /** Index of the first line not applied yet. */
  next: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface IpBatcher {
  submit(id: string, lines: IpLine[]): Promise<void>;
}

const batchers = new WeakMap<Runner, IpBatcher>();

/** One batcher per runner (i.e. per network namespace), shared by all of a run's actions. */
export function ipBatcher(runner: Runner): IpBatcher {
  let batcher = batchers.get(runner);
  if (!batcher) {
    batcher = createIpBatcher(runner);
    batchers.set(runner, batcher);
  }
  return batcher;
}

export function createIpBatcher(runner: Runner): IpBatcher {
  const queue: Job[] = [];
  let draining = false;

  const drain = async (): Promise<void> => {
    while (queue.length > 0) await runJobs(runner, queue.splice(0));
    draining = false;
  };

  return {
    submit(id, lines) {
      if (lines.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ id, lines, next: 0, resolve, reject });
        if (!draining) {
          draining = true;
          setImmediate(() => void drain());
        }
      });
    },
  };
}

async function runJobs(runner: Runner, jobs: Job[]): Promise<void> {
  let active = jobs;
  while (active.length > 0) {
    const flat = active.flatMap((job) => job.lines.slice(job.next).map((line) => ({ job, line })));
    let result: { exitCode: number; stderr: string };
    try {
      result = await runner.run("ip", ["-batch", "-"], {
        input: `${flat.map((e) => e.line.text).join("\n")}\n`,
        check: false,
      });
    } catch (error) {
      for (const job of active) job.reject(error);
      return;
    }
    if (result.exitCode === 0) {
      for (const job of active) job.resolve();
      return;
    }
    const failedAt = [...result.stderr.matchAll(/Command failed -:(\d+)/g)].at(-1)?.[1];
    const message = result.stderr
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.startsWith("Command failed"))
      .join("; ");
    if (failedAt === undefined) {
      // ip gave up without naming a line (a malformed argument): attribute it job by job.
      if (active.length > 1) {
        for (const job of active) await runJobs(runner, [job]);
        return;
      }
      const job = active[0] as Job;
      job.reject(refused(job, undefined, message || `ip exited with ${result.exitCode}`));
      return;
    }
    const index = Number(failedAt) - 1;
    for (const entry of flat.slice(0, index)) entry.job.next++;
    const failed = flat[index];
    if (failed === undefined)
      throw new Error(`bug: ip named line ${failedAt} of a ${flat.length}-line batch`);
    if (failed.line.tolerate?.test(message)) {
      failed.job.next++;
    } else {
      failed.job.reject(refused(failed.job, failed.line, message));
      active = active.filter((job) => job !== failed.job);
    }
    for (const job of active) if (job.next >= job.lines.length) job.resolve();
    active = active.filter((job) => job.next < job.lines.length);
  }
}

/** The kernel's message, the line it refused, and what of this action was already applied. */
function refused(job: Job, line: IpLine | undefined, message: string): OpError {
  const applied = job.lines.slice(0, job.next).map((l) => l.text);
  const done =
    line === undefined
      ? "ip does not say which of its lines were applied"
      : applied.length === 0
        ? "nothing of it was applied"
        : `already applied: ${applied.map((t) => `\`${t}\``).join(", ")}`;
  const what =
    line === undefined ? "ip refused the changes" : `the kernel refused \`${line.text}\``;
  return new OpError("apply-failed", `${what}: ${message} (${done})`, {
    details: [...applied.map((t) => `applied: ${t}`), ...(line ? [`failed: ${line.text}`] : [])],
    hint: "the message is the kernel's; fix the file (or the host) and run op apply again",
  });
}
