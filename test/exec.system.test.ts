/**
 * `op exec` through the built binary against the real Incus daemon: output streamed per
 * stream and byte-identical, stdin piped to its end, the command's exit code as op's, --json,
 * --timeout, the options Incus takes (env, cwd, user, group), a pseudo terminal under
 * script(1), and each error op must name. Containers are `opxc-…`, removed at the end.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "./support/cli.js";
import {
  createSharedProject,
  removeContainers,
  removeProject,
  sh,
  testImage,
  uid,
} from "./support/lxc.js";

let sandbox: CliSandbox;
const id = uid();
/** Made by op (user.op.managed=true) and running. */
const managed = `opxc-${id}-m`;
/** Made by op, never started. */
const stopped = `opxc-${id}-s`;
/** Not op's (no user.op.managed), running. */
const foreign = `opxc-${id}-f`;
/** A project of the test's own (images and profiles: the default project's), one container in it. */
const project = `opxc-${id}-p`;
const inProject = `opxc-${id}-q`;

beforeAll(() => {
  sandbox = createCliSandbox();
  sh("incus", ["launch", testImage, managed, "-c", "user.op.managed=true"]);
  sh("incus", ["init", testImage, stopped, "-c", "user.op.managed=true"]);
  sh("incus", ["launch", testImage, foreign]);
  createSharedProject(project);
  sh("incus", ["launch", testImage, inProject, "--project", project, "-c", "user.op.managed=true"]);
});
afterAll(async () => {
  await removeContainers([managed, stopped, foreign]);
  await removeProject(project);
  sandbox.cleanup();
});

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** `op ARGS` with `input` on its stdin (none: an empty pipe), output kept as bytes. */
function op(args: string[], input?: Buffer, env: Record<string, string> = {}): Run {
  const result = spawnSync(opBinary, args, {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...sandbox.env, ...env },
    input: input ?? Buffer.alloc(0),
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("a command's output, input and exit code", () => {
  it("streams 10 MB of stdout byte-identical, stderr apart in its order, and exits 3", () => {
    const script = [
      "head -c 10485760 /dev/urandom > /tmp/opxc-big",
      "echo err1 >&2",
      "head -c 4000000 /tmp/opxc-big",
      "echo err2 >&2",
      "tail -c 6485760 /tmp/opxc-big",
      "echo err3 >&2",
      "exit 3",
    ].join("; ");
    const run = op(["exec", managed, "--", "sh", "-c", script]);
    expect(run.stderr).toBe("err1\nerr2\nerr3\n");
    expect(run.status).toBe(3);
    expect(run.stdout.length).toBe(10 * 1024 * 1024);
    // What the command wrote, hashed inside the container.
    const inside = sh("incus", ["exec", managed, "--", "sha256sum", "/tmp/opxc-big"]).split(" ")[0];
    expect(sha256(run.stdout)).toBe(inside);
  });

  it("pipes stdin to the command to its end: cat gives 1 MB of random bytes back identical", () => {
    const input = randomBytes(1024 * 1024);
    const run = op(["exec", managed, "--", "cat"], input);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.equals(input)).toBe(true);
  });

  it("gives the command an empty stdin when op's is empty (it sees EOF at once)", () => {
    const run = op(["exec", managed, "--", "wc", "-c"]);
    expect(run.status).toBe(0);
    expect(run.stdout.toString().trim()).toBe("0");
  });

  it("passes --env, --cwd, --user and --group to Incus", () => {
    const run = op([
      "exec",
      managed,
      "--env",
      "OPXC_A=x=y",
      "--env",
      "OPXC_EMPTY=",
      "--cwd",
      "/tmp",
      "--user",
      "1234",
      "--group",
      "5678",
      "--",
      "sh",
      "-c",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell in the container expands it
      'echo "$OPXC_A|${OPXC_EMPTY-unset}|$(pwd)|$(id -u)|$(id -g)"',
    ]);
    expect(run.stderr).toBe("");
    expect(run.stdout.toString()).toBe("x=y||/tmp|1234|5678\n");
    expect(run.status).toBe(0);
  });

  it("--json: stdout is only the summary, the command's output goes to stderr", () => {
    const run = op(["exec", managed, "--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(run.status).toBe(3);
    const summary = JSON.parse(run.stdout.toString());
    expect(summary).toEqual({
      format_version: "1.0",
      exit_code: 3,
      instance: managed,
      project: "default",
      command: ["sh", "-c", "echo out; echo err >&2; exit 3"],
      timed_out: false,
      stdout: { bytes: 4, sha256: sha256(Buffer.from("out\n")) },
      stderr: { bytes: 4, sha256: sha256(Buffer.from("err\n")) },
    });
    expect(run.stderr.split("\n").sort()).toEqual(["", "err", "out"]);
  });

  it("--timeout kills the command and exits 124, as timeout(1) does", () => {
    const run = op(["exec", managed, "--timeout", "1", "--json", "--", "sleep", "30"]);
    expect(run.status).toBe(124);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ exit_code: 124, timed_out: true });
    // The command is gone, not left running in the container.
    expect(sh("incus", ["exec", managed, "--", "ps"])).not.toMatch(/sleep 30/);
  });

  it("runs in another project's instance, named PROJECT/NAME", () => {
    const run = op(["exec", `${project}/${inProject}`, "--json", "--", "hostname"]);
    expect(run.stderr).toBe(`${inProject}\n`);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({
      exit_code: 0,
      instance: inProject,
      project,
    });
    expect(run.status).toBe(0);
  });

  it("a reader of op's stdout that goes away ends the command as a closed pipe does (141)", () => {
    const result = spawnSync(
      "bash",
      ["-c", `${opBinary} exec ${managed} -- yes opxc-pipe | head -c 9; echo " \${PIPESTATUS[0]}"`],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...sandbox.env },
        encoding: "utf8",
        timeout: 50_000,
      },
    );
    expect(result.stdout).toBe("opxc-pipe 141\n");
    expect(sh("incus", ["exec", managed, "--", "ps"])).not.toMatch(/yes opxc-pipe/);
  });

  it("records nothing: no ledger is made", () => {
    expect(op(["exec", managed, "--", "true"]).status).toBe(0);
    expect(existsSync(sandbox.env.OP_LEDGER as string)).toBe(false);
  });
});

describe("a pseudo terminal (-t)", () => {
  it("runs the command in a terminal of op's size (under script(1))", () => {
    const command = `stty cols 123 rows 45; ${opBinary} exec -t ${managed} -- sh -c 'stty size; tty'`;
    const result = spawnSync("script", ["-qec", command, "/dev/null"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...sandbox.env, TERM: "xterm" },
      input: "",
      encoding: "utf8",
    });
    expect(result.stdout).toMatch(/45 123\r*\n\/dev\/pts\/\d+/);
    expect(result.status).toBe(0);
  });

  it("is refused when op's stdin is not a terminal, before anything runs", () => {
    const run = op(["exec", "-t", managed, "--", "true"]);
    expect(run.status).toBe(64);
    expect(run.stderr).toMatch(/-t needs a terminal on stdin/);
    expect(run.stderr).toMatch(/leave -t out/);
  });
});

describe("errors", () => {
  it("an instance that does not exist", () => {
    const run = op(["exec", `opxc-${id}-none`, "--", "true"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`instance opxc-${id}-none does not exist`));
    expect(run.stderr).toMatch(/incus list/);
  });

  it("an instance that does not exist, with --json: the error object on stdout", () => {
    const run = op(["exec", `opxc-${id}-none`, "--json", "--", "true"]);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout.toString()).error.code).toBe("not-found");
  });

  it("a stopped instance: a command runs only in a running one", () => {
    const run = op(["exec", stopped, "--", "true"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`instance ${stopped} is stopped`));
    expect(run.stderr).toMatch(/incus start/);
  });

  it("an instance op did not create, unless --any", () => {
    const refused = op(["exec", foreign, "--", "true"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/was not created by op/);
    expect(refused.stderr).toMatch(/--any/);
    const allowed = op(["exec", foreign, "--any", "--", "echo", "ok"]);
    expect(allowed.stdout.toString()).toBe("ok\n");
    expect(allowed.status).toBe(0);
  });

  it("no Incus daemon on the socket", () => {
    const socket = `${sandbox.dir}/opxc-no-incus.socket`;
    const run = op(["exec", managed, "--", "true"], undefined, { OP_INCUS_SOCKET: socket });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`the Incus daemon is not running: no socket at ${socket}`);
    expect(run.stderr).toMatch(/OP_INCUS_SOCKET/);
  });

  it("a command the instance does not have: 127, with Incus's message", () => {
    const run = op(["exec", managed, "--", "opxc-no-such-command"]);
    expect(run.status).toBe(127);
    expect(run.stderr).toMatch(/opxc-no-such-command: Command not found/);
  });

  it("--env without '=' or with an empty name", () => {
    for (const [pair, why] of [
      ["OPXC", "no '='"],
      ["=value", "the name before '=' is empty"],
    ] as const) {
      const run = op(["exec", managed, "--env", pair, "--", "true"]);
      expect(run.status).toBe(64);
      expect(run.stderr).toContain(`--env ${JSON.stringify(pair)}: ${why}`);
      expect(run.stderr).toMatch(/NAME=VALUE/);
    }
  });

  it("--user or --group that is not a number id", () => {
    for (const args of [
      ["--user", "root"],
      ["--user", "-1"],
      ["--group", "4294967295"],
    ]) {
      const run = op(["exec", managed, ...args, "--", "true"]);
      expect(run.status).toBe(64);
      expect(run.stderr).toMatch(new RegExp(`${args[0]} must be a whole number from 0`));
    }
  });

  it("a relative --cwd, and no command", () => {
    const relative = op(["exec", managed, "--cwd", "tmp", "--", "true"]);
    expect(relative.status).toBe(64);
    expect(relative.stderr).toMatch(/--cwd "tmp" is not an absolute path/);
    const none = op(["exec", managed]);
    expect(none.status).toBe(64);
  });
});
