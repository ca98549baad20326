/**
 * `op file push` and `op file pull` through the built op, on the real Incus daemon: a tree
 * (nested directories, a 0600 file, an empty file, a name with spaces, symlinks) pushed and
 * pulled back identical, a file owned by 1000:1000 in the instance pulled with its owner, a
 * 200 MB file both ways, and each error a user can make. The containers (`opfl-…`) are made
 * stopped: Incus reads and writes a stopped container's files.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIncusFiles } from "../src/incus-files.js";
import { type CliResult, createCliSandbox } from "./support/cli.js";
import { createSharedProject, incus, sh, testImage, uid } from "./support/lxc.js";

const tag = uid();
const ours = `opfl-${tag}-a`;
const theirs = `opfl-${tag}-b`;
const sandbox = createCliSandbox();
const work = mkdtempSync(join(tmpdir(), "opfl-"));
const files = createIncusFiles(incus);
const at = (path: string) => ({ instance: ours, project: "default", path });

function op(...args: string[]): CliResult {
  return sandbox.op(["file", ...args]);
}

/** Runs op and expects it to succeed, showing its stderr when it did not. */
function ok(...args: string[]): string {
  const result = op(...args);
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  return result.stdout;
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

/** Every entry under `root`, by relative path: its kind, mode, and content hash or target. */
async function describeTree(root: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = `${prefix}${name}`;
      const stats = lstatSync(path);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isSymbolicLink()) found[key] = `symlink -> ${readlinkSync(path)}`;
      else if (stats.isDirectory()) {
        found[key] = `directory ${mode}`;
        await walk(path, `${key}/`);
      } else found[key] = `file ${mode} ${await sha256(path)}`;
    }
  };
  await walk(root, "");
  return found;
}

beforeAll(() => {
  sh("incus", ["init", testImage, ours, "-q", "-c", "user.op.managed=true"]);
  sh("incus", ["init", testImage, theirs, "-q"]);
});
afterAll(() => {
  for (const name of [ours, theirs]) sh("incus", ["delete", "--force", name]);
  files.close();
  rmSync(work, { recursive: true, force: true });
  sandbox.cleanup();
});

describe("op file push and pull", () => {
  it("copy a tree in and back out identical: contents, modes, symlinks, owners", async () => {
    const tree = join(work, "tree");
    mkdirSync(join(tree, "nested", "deeper"), { recursive: true });
    mkdirSync(join(tree, "private"), { mode: 0o750 });
    writeFileSync(join(tree, "secret"), "not for everyone\n", { mode: 0o600 });
    writeFileSync(join(tree, "empty"), "");
    writeFileSync(join(tree, "a name with spaces"), "spaced\n");
    writeFileSync(join(tree, "nested", "deeper", "data.bin"), Buffer.from([0, 1, 2, 255, 10, 13]));
    writeFileSync(join(tree, "private", "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    symlinkSync("nested/deeper/data.bin", join(tree, "inside"));
    symlinkSync("/etc/passwd", join(tree, "outside"));

    expect(ok("push", "-r", tree, `${ours}:/root/`)).toBe(
      `pushed 5 files (48 bytes), 4 directories, 2 symlinks to ${ours}:/root/\n`,
    );
    // Owners are 0 unless --uid/--gid say otherwise; here a file 1000:1000 joins the tree.
    expect((await files.stat(at("/root/tree/secret")))?.uid).toBe(0);
    writeFileSync(join(work, "owned"), "mine\n", { mode: 0o640 });
    ok("push", join(work, "owned"), `${ours}:/root/tree/owned`, "--uid", "1000", "--gid", "1000");
    expect(await files.stat(at("/root/tree/owned"))).toEqual({
      type: "file",
      mode: 0o640,
      uid: 1000,
      gid: 1000,
    });

    const back = join(work, "back");
    mkdirSync(back);
    ok("pull", "-r", `${ours}:/root/tree`, back);
    const expected = await describeTree(tree);
    expected.owned = `file 640 ${await sha256(join(work, "owned"))}`;
    expect(await describeTree(join(back, "tree"))).toEqual(expected);
    // The tests run as root, so the instance's owners are kept.
    expect(lstatSync(join(back, "tree", "owned"))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(lstatSync(join(back, "tree", "secret"))).toMatchObject({ uid: 0, gid: 0 });
    // Nothing was recorded: the commands never open the ledger.
    expect(existsSync(join(sandbox.dir, "ledger"))).toBe(false);
  });

  it("replace a file, taking the mode and owner asked, and a symlink without writing through it", async () => {
    const file = join(work, "conf");
    writeFileSync(file, "one\n", { mode: 0o644 });
    ok("push", file, `${ours}:/root/conf`);
    writeFileSync(file, "two\n");
    ok("push", file, `${ours}:/root/conf`, "--mode", "0600", "--uid", "5", "--gid", "6");
    expect(await files.stat(at("/root/conf"))).toEqual({
      type: "file",
      mode: 0o600,
      uid: 5,
      gid: 6,
    });
    const entry = await files.read(at("/root/conf"));
    expect(entry?.type).toBe("file");
    if (entry?.type !== "file") return;
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("two\n");

    const passwd = await files.stat(at("/etc/passwd"));
    await files.write(at("/root/link"), { type: "symlink", target: "/etc/passwd", uid: 0, gid: 0 });
    ok("push", file, `${ours}:/root/link`);
    expect((await files.stat(at("/root/link")))?.type).toBe("file");
    expect(await files.stat(at("/etc/passwd"))).toEqual(passwd);
    const back = join(work, "passwd");
    ok("pull", `${ours}:/etc/passwd`, back);
    expect(await sha256(back)).not.toBe(await sha256(file));
  });

  it("put a file under a directory that exists, and several files into one", async () => {
    const a = join(work, "a.txt");
    const b = join(work, "b.txt");
    writeFileSync(a, "a\n");
    writeFileSync(b, "b\n");
    ok("push", a, `${ours}:/root`);
    expect((await files.stat(at("/root/a.txt")))?.type).toBe("file");
    ok("push", a, b, `${ours}:/tmp/`);
    const out = join(work, "out");
    mkdirSync(out);
    expect(
      JSON.parse(ok("pull", `${ours}:/tmp/a.txt`, `${ours}:/tmp/b.txt`, out, "--json")),
    ).toEqual({
      format_version: "1.0",
      files: 2,
      directories: 0,
      symlinks: 0,
      bytes: 4,
    });
    expect(readdirSync(out).sort()).toEqual(["a.txt", "b.txt"]);
    // A single file pulled to a new name, in place of a file that is there.
    writeFileSync(join(out, "renamed"), "old");
    ok("pull", `${ours}:/tmp/b.txt`, join(out, "renamed"));
    expect(await sha256(join(out, "renamed"))).toBe(await sha256(b));
    expect(readdirSync(out).filter((name) => name.startsWith("."))).toEqual([]);
  });

  it("name an instance of another project as PROJECT/NAME", async () => {
    const project = `opfl${tag}`;
    createSharedProject(project, { ownVolumes: false });
    try {
      sh("incus", [
        "init",
        testImage,
        ours,
        "--project",
        project,
        "-q",
        "-c",
        "user.op.managed=true",
      ]);
      const file = join(work, "project.txt");
      writeFileSync(file, "in a project\n");
      ok("push", file, `${project}/${ours}:/root/`);
      // The default project's instance of the same name did not get it.
      expect(await files.stat(at("/root/project.txt"))).toBeUndefined();
      ok("pull", `${project}/${ours}:/root/project.txt`, join(work, "project.back"));
      expect(await sha256(join(work, "project.back"))).toBe(await sha256(file));
    } finally {
      sh("incus", ["delete", "--force", ours, "--project", project]);
      sh("incus", ["project", "delete", project]);
    }
  });

  it("work the same on a running instance", async () => {
    sh("incus", ["start", ours]);
    try {
      const tree = join(work, "running");
      mkdirSync(join(tree, "sub"), { recursive: true });
      writeFileSync(join(tree, "sub", "f"), "while it runs\n", { mode: 0o640 });
      symlinkSync("sub/f", join(tree, "link"));
      ok("push", "-r", tree, `${ours}:/tmp/`);
      const back = join(work, "running-back");
      mkdirSync(back);
      ok("pull", "-r", `${ours}:/tmp/running`, back);
      expect(await describeTree(join(back, "running"))).toEqual(await describeTree(tree));
      // What the instance refuses is told with its own words (sysfs is read-only in there).
      const refusal = op("push", join(tree, "sub", "f"), `${ours}:/sys/opfl`);
      expect(refusal.stderr).toContain(
        `writing into ${ours}: opening /sys/opfl: Incus refused: open /sys/opfl: permission denied`,
      );
      expect(refusal.status).toBe(1);
    } finally {
      sh("incus", ["stop", "--force", ours]);
    }
  });

  it("stream a 200 MB file in and out unchanged", { timeout: 300_000 }, async () => {
    const big = join(work, "big");
    sh("sh", ["-c", `head -c 200M /dev/urandom > '${big}'`]);
    ok("push", big, `${ours}:/root/big`);
    ok("pull", `${ours}:/root/big`, join(work, "big.back"));
    expect(await sha256(join(work, "big.back"))).toBe(await sha256(big));
    rmSync(big);
    rmSync(join(work, "big.back"));

    // Stopped by SIGINT while it writes: the temporary file goes with it, the old one stays.
    const into = mkdtempSync(join(work, "stopped-"));
    writeFileSync(join(into, "big"), "the old file\n");
    const { child, done } = sandbox.start(["file", "pull", `${ours}:/root/big`, join(into, "big")]);
    const writing = () => readdirSync(into).some((name) => name.startsWith(".big.op-"));
    for (let tries = 0; !writing() && tries < 600; tries++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(writing()).toBe(true);
    child.kill("SIGINT");
    const stopped = await done;
    expect(stopped.stderr).toContain("SIGINT: pull stopped");
    expect(stopped.status).toBe(130);
    expect(readdirSync(into)).toEqual(["big"]);
    expect(readFileSync(join(into, "big"), "utf8")).toBe("the old file\n");
  });
});

describe("op file refuses", () => {
  const refused = (result: CliResult, status: number, message: string, hint?: string) => {
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(message);
    if (hint !== undefined) expect(result.stderr).toContain(hint);
    expect(result.status).toBe(status);
  };
  const local = () => {
    const path = join(work, "local.txt");
    writeFileSync(path, "x\n");
    return path;
  };

  it("a local path that does not exist, naming it", async () => {
    const missing = join(work, "no-such-file");
    refused(
      op("push", missing, `${ours}:/root/x`),
      1,
      `${missing} does not exist (the local path to push)`,
    );
    expect(await files.stat(at("/root/x"))).toBeUndefined();
  });

  it("a directory that does not exist in the instance, unless -p creates it", async () => {
    refused(
      op("push", local(), `${ours}:/root/new/deeper/file`),
      1,
      `directory ${ours}:/root/new/deeper does not exist`,
      "give -p (--create-dirs) to create it",
    );
    expect(await files.stat(at("/root/new"))).toBeUndefined();
    ok("push", "-p", local(), `${ours}:/root/new/deeper/file`);
    expect((await files.stat(at("/root/new/deeper/file")))?.type).toBe("file");
    expect(await files.stat(at("/root/new/deeper"))).toEqual({
      type: "directory",
      mode: 0o755,
      uid: 0,
      gid: 0,
    });
  });

  it("an instance op did not create, unless --any", async () => {
    refused(
      op("push", local(), `${theirs}:/root/x`),
      1,
      `instance ${theirs} was not created by op`,
      "give --any",
    );
    ok("push", "--any", local(), `${theirs}:/root/x`);
    refused(op("pull", `${theirs}:/root/x`, work), 1, `instance ${theirs} was not created by op`);
    ok("pull", "--any", `${theirs}:/root/x`, join(work, "theirs"));
  });

  it("an instance that does not exist", () => {
    refused(
      op("push", local(), `opfl-${tag}-none:/root/x`),
      1,
      `instance opfl-${tag}-none does not exist`,
    );
  });

  it("a path that is not NAME:/PATH, or not absolute, or empty", () => {
    refused(op("push", local(), "just-a-path"), 64, '"just-a-path" is not NAME:/PATH');
    refused(op("push", local(), `${ours}:root/x`), 64, "the path in the instance is not absolute");
    refused(op("pull", `${ours}:`, work), 64, "names no path in the instance");
    refused(op("push", local(), "bad;name:/x"), 64, "is not an Incus instance name");
    refused(op("push", local()), 64, "needs at least one source and a destination");
  });

  it("a directory without -r, both ways", () => {
    refused(op("push", work, `${ours}:/root/`), 64, `${work} is a directory`, "give -r");
    refused(op("pull", `${ours}:/root`, work), 64, `${ours}:/root is a directory`, "give -r");
  });

  it("a source missing in the instance, and a local directory that does not exist", () => {
    refused(op("pull", `${ours}:/root/none`, work), 1, `${ours}:/root/none does not exist`);
    const nowhere = join(work, "nowhere", "file");
    refused(
      op("pull", `${ours}:/etc/passwd`, nowhere),
      1,
      `directory ${join(work, "nowhere")} does not exist`,
    );
    expect(existsSync(join(work, "nowhere"))).toBe(false);
  });

  it("several sources into something that is not a directory", () => {
    refused(
      op("push", local(), local(), `${ours}:/etc/passwd`),
      64,
      `${ours}:/etc/passwd is not a directory, and several sources go there`,
    );
    refused(
      op("pull", `${ours}:/etc/passwd`, `${ours}:/etc/group`, join(work, "local.txt")),
      64,
      "is not a directory, and several sources go there",
    );
  });
});
