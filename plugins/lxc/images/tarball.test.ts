/**
 * The image build from a system tarball, on small tarballs made here (tar-stream writes them;
 * gzip by node's zlib, xz by the xz tool): the source's entries pass through unchanged, the
 * adaptation's files come after them, the output is the same whatever the compression, and
 * what is not a tarball is refused naming the file.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { extract, pack } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { metadataFiles, type TarballAdapt, templatePathProblem } from "./adapt.js";
import { adaptedRootfs, imageUpload, metadataTar, tarballFormat } from "./tarball.js";
import { checkTarballAliases, prepareTarballImage } from "./tarball-prepare.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "optb-unit-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Entry = {
  name: string;
  type?: "file" | "directory" | "symlink";
  content?: string;
  linkname?: string;
  mode?: number;
};

/** A tar of `entries`, as tar-stream writes it. */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const out = pack();
  const chunks: Buffer[] = [];
  out.on("data", (chunk) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<void>((resolve) => out.on("end", () => resolve()));
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? "file",
      mode: e.mode ?? 0o644,
      mtime: new Date(1e12),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (error?: Error | null) => (error ? reject(error) : resolve());
      if (e.content === undefined) out.entry(header, cb);
      else out.entry(header, e.content, cb);
    });
  }
  out.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Every entry of a tar: name, type, mode, link target, content. */
async function entriesOf(tar: Buffer | Readable): Promise<Entry[]> {
  const parser = extract();
  (Buffer.isBuffer(tar) ? Readable.from([tar]) : tar).pipe(parser as never);
  const entries: Entry[] = [];
  for await (const entry of parser) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const { name, type, mode, linkname } = entry.header;
    entries.push({
      name,
      type: type as Entry["type"],
      mode,
      ...(linkname ? { linkname } : {}),
      ...(type === "file" ? { content: Buffer.concat(chunks).toString() } : {}),
    });
  }
  return entries;
}

const collect = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const write = (name: string, bytes: Buffer | string) => {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
};

/** A root file system with systemd's networkd unit, an /etc/systemd/network, and a .network op replaces. */
const system: Entry[] = [
  { name: "./", type: "directory", mode: 0o755 },
  { name: "./etc/", type: "directory", mode: 0o755 },
  { name: "./etc/os-release", content: "ID=debian\n" },
  { name: "./etc/systemd/", type: "directory", mode: 0o755 },
  { name: "./etc/systemd/network/", type: "directory", mode: 0o755 },
  { name: "./etc/systemd/network/50-op-eth0.network", content: "old\n" },
  { name: "./lib", type: "symlink", linkname: "usr/lib", mode: 0o777 },
  { name: "./usr/lib/systemd/system/systemd-networkd.service", content: "[Unit]\n" },
  { name: "./usr/bin/tool", content: "#!/bin/sh\n", mode: 0o4755 },
];

const adapt: TarballAdapt = { networkd: true, lxc_generator: true };

async function build(file: string, options = adapt, created = 1_700_000_000): Promise<Buffer> {
  const fd = openSync(file, "r");
  try {
    return await collect(await adaptedRootfs({ file, fd, created, adapt: options }, () => {}));
  } finally {
    closeSync(fd);
  }
}

describe("tarballFormat", () => {
  it("tells gzip, xz and tar from their first bytes", async () => {
    const tar = await tarOf(system);
    expect(tarballFormat(tar, "t")).toBe("tar");
    expect(tarballFormat(gzipSync(tar), "t")).toBe("gzip");
    expect(tarballFormat(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1]), "t")).toBe("xz");
  });

  it("refuses what is not a tarball, naming the file and what it starts with", () => {
    expect(() => tarballFormat(Buffer.from("hello, world"), "/srv/notes.txt")).toThrow(
      '/srv/notes.txt is not a tarball: neither gzip, xz nor tar (it starts with "hello, world")',
    );
    expect(() => tarballFormat(Buffer.alloc(0), "/srv/empty")).toThrow(
      "/srv/empty is not a tarball: neither gzip, xz nor tar (it is empty)",
    );
    expect(() => tarballFormat(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]), "/srv/a.tar.zst")).toThrow(
      "/srv/a.tar.zst is compressed with zstd, which op does not read",
    );
  });
});

describe("adaptedRootfs", () => {
  it("passes the source's entries through and appends the adaptation, with only the directories it lacks", async () => {
    const out = await entriesOf(await build(write("plain.tar", await tarOf(system))));
    const names = out.map((e) => e.name);
    // The source's order and contents, less the .network op replaces.
    expect(out.slice(0, 8)).toEqual([
      { name: "./", type: "directory", mode: 0o755 },
      { name: "./etc/", type: "directory", mode: 0o755 },
      { name: "./etc/os-release", type: "file", mode: 0o644, content: "ID=debian\n" },
      { name: "./etc/systemd/", type: "directory", mode: 0o755 },
      { name: "./etc/systemd/network/", type: "directory", mode: 0o755 },
      { name: "./lib", type: "symlink", mode: 0o777, linkname: "usr/lib" },
      {
        name: "./usr/lib/systemd/system/systemd-networkd.service",
        type: "file",
        mode: 0o644,
        content: "[Unit]\n",
      },
      { name: "./usr/bin/tool", type: "file", mode: 0o4755, content: "#!/bin/sh\n" },
    ]);
    expect(names.slice(8)).toEqual([
      "./etc/systemd/system/",
      "./etc/systemd/system/multi-user.target.wants/",
      "./etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
      "./etc/systemd/system/sockets.target.wants/",
      "./etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
      "./etc/systemd/network/50-op-eth0.network",
      "./etc/systemd/system-generators/",
      "./etc/systemd/system-generators/op-container",
    ]);
    expect(names.filter((n) => n.endsWith("50-op-eth0.network"))).toHaveLength(1);
    const byName = new Map(out.map((e) => [e.name, e]));
    expect(
      byName.get("./etc/systemd/system/multi-user.target.wants/systemd-networkd.service")?.linkname,
    ).toBe("/lib/systemd/system/systemd-networkd.service");
    expect(byName.get("./etc/systemd/network/50-op-eth0.network")?.content).toContain(
      "Name=eth0\n",
    );
    const generator = byName.get("./etc/systemd/system-generators/op-container");
    expect(generator?.mode).toBe(0o755);
    expect(generator?.content).toMatch(/^#!\/bin\/sh\n/);
    expect(generator?.content).toContain("systemd-detect-virt --container");
  });

  it("builds the same bytes from a plain, a gzip and an xz tarball of the same tree", async () => {
    const tar = await tarOf(system);
    const plain = write("same.tar", tar);
    const gz = write("same.tar.gz", gzipSync(tar));
    execFileSync("xz", ["-k", "-f", plain]);
    const [a, b, c] = [await build(plain), await build(gz), await build(`${plain}.xz`)];
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
    // Without adaptation, the output is the source's entries again.
    expect(await entriesOf(await build(plain, {}))).toEqual(await entriesOf(tar));
  });

  it("refuses networkd for a tarball without systemd-networkd, and a damaged tarball, naming the file", async () => {
    const bare = write("bare.tar", await tarOf([{ name: "./etc/os-release", content: "x\n" }]));
    await expect(build(bare, { networkd: true })).rejects.toThrow(
      `${bare}: adapt.networkd needs systemd-networkd, which the tarball does not hold (looked for /lib/systemd/system/systemd-networkd.service and /usr/lib/systemd/system/systemd-networkd.service)`,
    );
    const empty = write("empty.tar.gz", gzipSync(Buffer.alloc(1024)));
    await expect(build(empty, {})).rejects.toThrow(`${empty} is an empty tarball`);
    const gz = gzipSync(await tarOf(system));
    const cut = write("cut.tar.gz", gz.subarray(0, gz.length - 40));
    await expect(build(cut)).rejects.toThrow(`${cut} could not be read as a tarball`);
  });
});

it("refuses a binary pax record (an xattr) rather than copy it changed", async () => {
  // A pax header whose xattr value is not UTF-8, then the file it belongs to.
  const body = Buffer.concat([
    Buffer.from(" SCHILY.xattr.user.optb="),
    Buffer.from([0xff, 0xfe]),
    Buffer.from("\n"),
  ]);
  const record = Buffer.concat([Buffer.from(String(body.length + 2)), body]);
  const out = pack();
  const chunks: Buffer[] = [];
  out.on("data", (chunk) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve) => out.on("end", () => resolve()));
  // tar-stream writes no pax header with a body of our own: written as a file, then retyped.
  out.entry({ name: "PaxHeader", mode: 0o644 }, record);
  out.entry({ name: "./usr/bin/ping", mode: 0o755 }, "elf");
  out.finalize();
  await ended;
  const tar = Buffer.concat(chunks);
  tar[156] = "x".charCodeAt(0);
  tar.fill(" ", 148, 156);
  const sum = tar.subarray(0, 512).reduce((total, byte) => total + byte, 0);
  tar.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  const file = write("xattr.tar", tar);
  await expect(build(file, {})).rejects.toThrow(
    `${file}: entry ./usr/bin/ping carries the binary pax record SCHILY.xattr.user.optb, which op cannot copy unchanged`,
  );
});

describe("imageUpload", () => {
  it("streams the image prepare hashed, and aborts it before its end when the tarball changed since", async () => {
    const file = write("upload.tar", await tarOf(system));
    const sourceSha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
    const image = { tarball: file, sourceSha256, created: 1_700_000_000, adapt };
    const upload = await imageUpload(image);
    expect((await collect(upload.metadata)).equals(await metadataTar({ ...image, file }))).toBe(
      true,
    );
    expect((await collect(upload.rootfs)).equals(await build(file))).toBe(true);
    const stale = await imageUpload({ ...image, sourceSha256: "0".repeat(64) });
    await expect(collect(stale.rootfs)).rejects.toThrow(
      `${file} changed since the plan (SHA-256 ${sourceSha256.slice(0, 12)}, planned 000000000000)`,
    );
  });
});

describe("metadata", () => {
  it("names the architecture, creation date, properties with the source's SHA-256, profiles and templates", async () => {
    const input = {
      file: "/srv/debian.tar.xz",
      sourceSha256: "ab".repeat(32),
      created: 1_700_000_000,
      adapt: {
        templates: {
          "/etc/hostname": "{{ container.name }}\n",
          "/etc/hosts": "127.0.1.1 {{ container.name }}\n",
        },
        profiles: ["default", "build"],
        properties: { os: "debian", release: "12" },
        architecture: "aarch64",
      },
    };
    const files = metadataFiles(input);
    expect(files.map((f) => f.path)).toEqual([
      "metadata.yaml",
      "templates/t0-etc_hostname.tpl",
      "templates/t1-etc_hosts.tpl",
    ]);
    expect(parse(files[0]?.content ?? "")).toEqual({
      architecture: "aarch64",
      creation_date: 1_700_000_000,
      properties: {
        description: "built by op from /srv/debian.tar.xz",
        os: "debian",
        release: "12",
        "user.op.source-sha256": "ab".repeat(32),
      },
      profiles: ["default", "build"],
      templates: {
        "/etc/hostname": {
          when: ["create", "copy"],
          create_only: false,
          template: "t0-etc_hostname.tpl",
        },
        "/etc/hosts": {
          when: ["create", "copy"],
          create_only: false,
          template: "t1-etc_hosts.tpl",
        },
      },
    });
    const tar = await entriesOf(await metadataTar(input));
    expect(tar.map((e) => e.name)).toEqual(["templates/", ...files.map((f) => f.path)]);
    expect(tar.find((e) => e.name === "templates/t0-etc_hostname.tpl")?.content).toBe(
      "{{ container.name }}\n",
    );
    // Deterministic: the fingerprint prepare computes is the one Incus gives.
    expect((await metadataTar(input)).equals(await metadataTar(input))).toBe(true);
  });

  it("refuses template paths that are relative, hold a NUL, or name no file", () => {
    expect(templatePathProblem("/etc/hostname")).toBeUndefined();
    expect(templatePathProblem("etc/hostname")).toBe(
      'template path "etc/hostname" is not absolute',
    );
    expect(templatePathProblem("/etc/host\0name")).toBe(
      'template path "/etc/host\\u0000name" holds a control character',
    );
    expect(templatePathProblem("/etc/../shadow")).toMatch(/must name a file/);
    expect(templatePathProblem("/etc/")).toMatch(/must name a file/);
    expect(templatePathProblem("/")).toMatch(/must name a file/);
  });
});

describe("prepareTarballImage", () => {
  const prepare = async (spec: Record<string, unknown>, cache: Record<string, string> = {}) => {
    const lines: string[] = [];
    const used: Record<string, string> = {};
    const image = await prepareTarballImage(
      { alias: "optb/x", ...spec } as never,
      "/plugins/lxc/images/0",
      {
        resolve: (file) => (file.startsWith("/") ? file : join(dir, file)),
        cache,
        used,
        problems: { add: (path, message) => lines.push(`${path}: ${message}`) },
      },
    );
    return { image, lines, used };
  };

  it("hashes the source and the image it builds, and caches both by path, size, mtime and adaptation", async () => {
    const file = write("prep.tar.gz", gzipSync(await tarOf(system)));
    const { image, lines, used } = await prepare({ tarball: "prep.tar.gz", adapt });
    expect(lines).toEqual([]);
    const sourceSha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
    expect(image).toMatchObject({
      alias: "optb/x",
      path: "/plugins/lxc/images/0",
      tarball: file,
      sourceSha256,
    });
    const built = createHash("sha256")
      .update(await metadataTar({ file, sourceSha256, created: image?.created ?? 0, adapt }))
      .update(await build(file, adapt, image?.created))
      .digest("hex");
    expect(image?.fingerprint).toBe(built);
    const [key] = Object.keys(used);
    expect(used[key as string]).toBe(`${sourceSha256}:${built}`);
    // A cached entry is taken as it is: the file is not read again.
    const again = await prepare(
      { tarball: "prep.tar.gz", adapt },
      { [key as string]: `${"1".repeat(64)}:${"2".repeat(64)}` },
    );
    expect(again.image?.fingerprint).toBe("2".repeat(64));
    // Another adaptation is another key.
    const other = await prepare(
      { tarball: "prep.tar.gz", adapt: { networkd: true } },
      { [key as string]: "x:y" },
    );
    expect(other.image?.fingerprint).not.toBe("y");
  });

  it("says what is wrong with each JSON path, before reading anything", async () => {
    const text = write("notes.txt", "not a tarball\n");
    expect((await prepare({ tarball: text })).lines).toEqual([
      `/plugins/lxc/images/0/tarball: ${text} is not a tarball: neither gzip, xz nor tar (it starts with "not a tarball\\n")`,
    ]);
    const missing = await prepare({ tarball: "absent.tar" });
    expect(missing.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^/plugins/lxc/images/0/tarball: ${join(dir, "absent.tar")}: cannot open the image tarball`,
        ),
      ),
    ]);
    const templates = await prepare({
      tarball: text,
      adapt: { templates: { "etc/hostname": "x", "/etc/a\0b": "y", "/ok": "z" } },
    });
    expect(templates.lines).toEqual([
      '/plugins/lxc/images/0/adapt/templates/etc~1hostname: template path "etc/hostname" is not absolute',
      '/plugins/lxc/images/0/adapt/templates/~1etc~1a\0b: template path "/etc/a\\u0000b" holds a control character',
    ]);
    expect(templates.image).toBeUndefined();
    expect((await prepare({ tarball: text, metadata: "m", rootfs: "r" })).lines).toEqual([
      '/plugins/lxc/images/0: give either "tarball" (op builds the image) or "metadata" and "rootfs" (a split image), not both',
    ]);
  });
});

describe("checkTarballAliases", () => {
  const live = (managed: boolean) => ({
    containers: [],
    bridges: {},
    aliases: { "optb/x": "f".repeat(64) },
    images: [
      {
        fingerprint: "f".repeat(64),
        aliases: [{ name: "optb/x", description: "" }],
        managed,
        usedBy: [],
      },
    ],
  });
  const check = (managed: boolean, tarball: string | undefined) => {
    const lines: string[] = [];
    checkTarballAliases(
      [{ alias: "optb/x", path: "/plugins/lxc/images/2", ...(tarball ? { tarball } : {}) }],
      live(managed),
      {
        add: (path, message) => lines.push(`${path}: ${message}`),
      },
    );
    return lines;
  };

  it("refuses a tarball's alias that names an image op did not build, and only that", () => {
    expect(check(false, "/t.tar")).toEqual([
      `/plugins/lxc/images/2/alias: alias "optb/x" already names image ${"f".repeat(12)}, which op did not build (it has no user.op.managed property); op does not take over an alias it did not make`,
    ]);
    expect(check(true, "/t.tar")).toEqual([]);
    // The split form keeps its old behaviour.
    expect(check(false, undefined)).toEqual([]);
  });
});
