/**
 * Declared files on the real daemon, through the built op as a user runs it: written into a
 * container created by the same run (before its start, in a parent directory op makes), from
 * `content` and from a `source` beside the state file; a hand-made change of content, mode or
 * owner is drift (`op apply --check` exits 2) that `op apply` puts back; `ensure: absent`
 * deletes; a stopped container gets its files and stays stopped. Neither the plan nor the
 * ledger ever holds the content. Containers are `opdf-…`, removed after.
 */
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "../../../test/support/cli.js";
import { incus, instance, removeContainers, sh, testImage } from "../../../test/support/lxc.js";

const tag = randomBytes(3).toString("hex");
const running = `opdf-${tag}-a`;
const stopped = `opdf-${tag}-b`;
const containers = [running, stopped];
/** Text that must never appear in a plan or the ledger. */
const secret = `opdf-secret-${tag}\n`;
const sourceBytes = randomBytes(3000);

let sandbox: CliSandbox;

const sha = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");
const op = (args: string[]) => sandbox.op(args, {});
const inside = (name: string, script: string) =>
  sh("incus", ["exec", name, "--", "sh", "-c", script]);

function stateFile(name: string, files: Record<string, unknown>[], extra = {}): string {
  const path = join(sandbox.dir, name);
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      plugins: {
        lxc: {
          containers: [{ id: running, image: testImage, stop_timeout: 5, files, ...extra }],
        },
      },
    }),
  );
  return path;
}

beforeAll(() => {
  sandbox = createCliSandbox();
  writeFileSync(join(sandbox.dir, "payload.bin"), sourceBytes);
});
afterAll(async () => {
  await removeContainers(containers);
  sandbox.cleanup();
});

describe("declared files in a running container", () => {
  const declared = [
    { path: "/etc/opdf/motd", content: secret, mode: "0640", uid: 5, gid: 6 },
    { path: "/opdf-data/deep/payload.bin", source: "payload.bin", mode: "600" },
    { path: "/etc/opdf-gone", ensure: "absent" },
  ];
  let file: string;

  beforeAll(() => {
    file = stateFile("running.json", declared);
  });

  it("are written by the create, named in the plan by size, hash, mode and owner only", async () => {
    const plan = op(["plan", file]);
    expect(plan.stderr).toBe("");
    expect(plan.stdout).toContain(
      `writes /etc/opdf/motd (${Buffer.byteLength(secret)} B, sha256 ${sha(secret).slice(0, 12)}, 0640, 5:6)`,
    );
    expect(plan.stdout).toContain(
      `writes /opdf-data/deep/payload.bin (2.9 KiB, sha256 ${sha(sourceBytes).slice(0, 12)}, 0600, 0:0)`,
    );
    expect(plan.stdout).not.toContain(secret.trim());

    const apply = op(["apply", file]);
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    expect(apply.stdout).toContain("verified: the host matches the file");
    expect((await instance(running))?.status).toBe("Running");
    expect(inside(running, "cat /etc/opdf/motd")).toBe(secret);
    expect(inside(running, "stat -c '%a %u %g' /etc/opdf/motd /opdf-data/deep")).toBe(
      "640 5 6\n755 0 0\n",
    );
    const pulled = await incus.statFile(running, "/opdf-data/deep/payload.bin");
    expect(pulled?.body?.equals(sourceBytes)).toBe(true);
    expect(pulled?.mode).toBe("0600");

    expect(op(["apply", file]).stdout).toBe("No changes: the host matches the file.\n");
    const ledger = op(["ledger", "export"]).stdout;
    expect(ledger).toContain(sha(secret));
    expect(ledger).not.toContain(secret.trim());
    expect(ledger).not.toContain(sourceBytes.toString("base64").slice(0, 40));
  });

  it("changed by hand inside is drift: --check exits 2, apply puts it back", () => {
    inside(running, "echo x > /etc/opdf/motd");
    const check = op(["apply", "--check", file]);
    expect(check.status).toBe(2);
    expect(check.stdout).toContain(
      `change file /etc/opdf/motd: content 2 B sha256 ${sha("x\n").slice(0, 12)} → ${Buffer.byteLength(secret)} B sha256 ${sha(secret).slice(0, 12)}`,
    );
    expect(check.stdout).not.toContain(secret.trim());

    const apply = op(["apply", file]);
    expect(apply.status).toBe(0);
    expect(inside(running, "cat /etc/opdf/motd")).toBe(secret);
    expect(op(["apply", "--check", file]).status).toBe(0);
  });

  it("given another mode or owner by hand is drift too, put back with its content", () => {
    inside(running, "chmod 777 /etc/opdf/motd && chown 1:2 /etc/opdf/motd");
    const check = op(["apply", "--check", file]);
    expect(check.status).toBe(2);
    expect(check.stdout).toContain("change file /etc/opdf/motd: mode 0777 → 0640; owner 1:2 → 5:6");

    expect(op(["apply", file]).status).toBe(0);
    expect(inside(running, "stat -c '%a %u %g' /etc/opdf/motd")).toBe("640 5 6\n");
    expect(inside(running, "cat /etc/opdf/motd")).toBe(secret);
    expect(op(["apply", "--check", file]).status).toBe(0);
    // The drift and modify records of these runs name hashes, never the content.
    const ledger = op(["ledger", "export"]).stdout;
    expect(ledger).toContain('"path":"files./etc/opdf/motd"');
    expect(ledger).not.toContain(secret.trim());
  });

  it("with ensure: absent are deleted when they appear", () => {
    inside(running, "echo made by hand > /etc/opdf-gone");
    const check = op(["apply", "--check", file]);
    expect(check.status).toBe(2);
    expect(check.stdout).toContain("delete file /etc/opdf-gone (13 B, sha256");

    expect(op(["apply", file]).status).toBe(0);
    expect(inside(running, "test -e /etc/opdf-gone || echo gone")).toBe("gone\n");
    expect(op(["apply", "--check", file]).status).toBe(0);
  });

  it("newly declared on a container that exists are compared before anything is written", () => {
    // Already right inside, but not yet in the container's tag: prepare reads it itself.
    inside(running, "printf 'same\\n' > /etc/opdf-same && chmod 644 /etc/opdf-same");
    const more = stateFile("more.json", [
      ...declared,
      { path: "/etc/opdf-same", content: "same\n" },
    ]);
    const check = op(["apply", "--check", more]);
    expect(check.stdout).not.toContain("/etc/opdf-same (");
    expect(check.stdout).not.toContain("change file /etc/opdf-same");
    expect(op(["apply", more]).status).toBe(0);
    expect(op(["apply", "--check", more]).status).toBe(0);
  });
});

describe("a symlink where a file is declared", () => {
  it("is replaced by the file, and what it pointed to is left alone", () => {
    const passwd = inside(running, "cat /etc/passwd");
    inside(running, "ln -s /etc/passwd /etc/opdf-link");
    const file = stateFile("link.json", [{ path: "/etc/opdf-link", content: "mine\n" }]);
    const check = op(["apply", "--check", file]);
    expect(check.stdout).toContain("replace /etc/opdf-link, a symlink, 0777, 0:0, with a file");
    const apply = op(["apply", file]);
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    expect(inside(running, "test -L /etc/opdf-link || cat /etc/opdf-link")).toBe("mine\n");
    expect(inside(running, "cat /etc/passwd")).toBe(passwd);
  });
});

describe("a declared file op cannot write", () => {
  it("is refused at apply with what is in the way, and the other files are still written", () => {
    inside(running, "mkdir -p /etc/opdf-dir");
    const bad = stateFile("bad.json", [
      { path: "/etc/opdf-dir", content: "a\n" },
      { path: "/etc/passwd/opdf", content: "b\n" },
      { path: "/etc/opdf-fine", content: "c\n" },
    ]);
    const apply = op(["apply", bad]);
    expect(apply.status).toBe(1);
    expect(apply.stderr + apply.stdout).toContain(
      `${running}:/etc/opdf-dir is a directory; op writes and deletes only files there`,
    );
    expect(apply.stderr + apply.stdout).toContain(
      `${running}:/etc/passwd is a file, not a directory, so /etc/passwd/opdf cannot be written`,
    );
    expect(inside(running, "cat /etc/opdf-fine")).toBe("c\n");
    expect(inside(running, "test -d /etc/opdf-dir && echo dir")).toBe("dir\n");
  });
});

describe("declared files in a stopped container", () => {
  // More files than are written at once, all in one directory op must make.
  const many = Array.from({ length: 20 }, (_, i) => ({
    path: `/srv/opdf-many/sub/f${i}`,
    content: `${i}\n`,
  }));

  it("are written without starting it, and drift there is put back the same way", async () => {
    const path = join(sandbox.dir, "stopped.json");
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        plugins: {
          lxc: {
            containers: [
              {
                id: stopped,
                image: testImage,
                running: false,
                files: [
                  { path: "/etc/opdf-conf", content: "a=1\n", mode: "0600", uid: 7, gid: 7 },
                  ...many,
                ],
              },
            ],
          },
        },
      }),
    );
    const apply = op(["apply", path]);
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    expect((await instance(stopped))?.status).toBe("Stopped");
    const written = await incus.statFile(stopped, "/etc/opdf-conf");
    expect(written?.body?.toString()).toBe("a=1\n");
    expect([written?.mode, written?.uid, written?.gid]).toEqual(["0600", 7, 7]);
    for (const { path, content } of many)
      expect((await incus.statFile(stopped, path))?.body?.toString()).toBe(content);

    // Changed while stopped (through the file API, as `incus file push` does).
    await incus.writeFile(stopped, "/etc/opdf-conf", Buffer.from("a=2\n"), {
      mode: "0600",
      uid: 7,
      gid: 7,
    });
    expect(op(["apply", "--check", path]).status).toBe(2);
    expect(op(["apply", path]).status).toBe(0);
    expect((await incus.statFile(stopped, "/etc/opdf-conf"))?.body?.toString()).toBe("a=1\n");
    expect((await instance(stopped))?.status).toBe("Stopped");
    expect(op(["apply", "--check", path]).status).toBe(0);
  });
});

describe("a container created with declared files", () => {
  it("boots with them: they are written before its first start", async () => {
    const name = `opdf-${tag}-d`;
    containers.push(name);
    // The test image's init is a shell script: one that says it ran replaces it.
    const init = [
      "#!/bin/sh",
      "trap 'exit 0' PWR TERM INT USR1 USR2",
      "echo declared init > /opdf-first-boot",
      "while :; do sleep 3600 & wait $!; done",
      "",
    ].join("\n");
    const path = join(sandbox.dir, "boot.json");
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        plugins: {
          lxc: {
            containers: [
              {
                id: name,
                image: testImage,
                stop_timeout: 5,
                files: [{ path: "/sbin/init", content: init, mode: "0755" }],
              },
            ],
          },
        },
      }),
    );
    const apply = op(["apply", path]);
    expect(apply.stderr).toBe("");
    expect(apply.status).toBe(0);
    expect((await instance(name))?.status).toBe("Running");
    // pid 1 writes it as it starts: waited for (a few tries), not timed.
    let seen: string | undefined;
    for (let i = 0; i < 40 && seen === undefined; i++) {
      seen = (await incus.statFile(name, "/opdf-first-boot"))?.body?.toString();
      if (seen === undefined) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(seen).toBe("declared init\n");
  });
});

describe("content over the limit", () => {
  it("is refused by op validate at its path, without echoing it", () => {
    const huge = stateFile("huge.json", [
      { path: "/etc/big", content: "y".repeat(1024 * 1024 + 1) },
    ]);
    const validate = op(["validate", huge]);
    expect(validate.status).toBe(1);
    expect(validate.stderr).toContain(
      "/plugins/lxc/containers/0/files/0/content: the content is 1048577 bytes, more than the limit of 1048576 (1 MiB)",
    );
    expect(validate.stderr.length + validate.stdout.length).toBeLessThan(4096);
  });
});

describe("the client's file calls (src/incus.ts)", () => {
  it("tell a missing file, a path under a file and a missing instance apart", async () => {
    // A container of its own, so this test needs none of the others.
    const name = `opdf-${tag}-c`;
    containers.push(name);
    sh("incus", ["init", testImage, name, "-q"]);
    for (const body of [undefined, false] as const) {
      const options = body === undefined ? {} : { body };
      expect(await incus.statFile(name, "/etc/opdf-none", options)).toBeUndefined();
      expect(await incus.statFile(name, "/etc/passwd/x", options)).toBeUndefined();
      const dir = await incus.statFile(name, "/etc", options);
      expect(dir).toEqual({ type: "directory", mode: "0755", uid: 0, gid: 0 });
    }
    const head = await incus.statFile(name, "/etc/passwd", { body: false });
    expect(head?.type).toBe("file");
    expect(head?.body).toBeUndefined();
    await expect(incus.statFile(`opdf-${tag}-none`, "/etc/passwd")).rejects.toThrow(
      /Incus refused: .*not found/i,
    );
    await expect(
      incus.writeFile(name, "/etc/passwd/x", Buffer.from("x"), { mode: "0644", uid: 0, gid: 0 }),
    ).rejects.toMatchObject({ code: "not-found" });
    expect(await incus.deleteFile(name, "/etc/opdf-none")).toBe(false);
    await incus.writeFile(name, "/etc/opdf-x", Buffer.from("x"), { mode: "0600", uid: 1, gid: 2 });
    expect(await incus.deleteFile(name, "/etc/opdf-x")).toBe(true);
    expect(await incus.statFile(name, "/etc/opdf-x")).toBeUndefined();
  });
});
