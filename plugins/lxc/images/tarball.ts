/**
 * A split Incus image built from a system tarball, streaming: the source (plain, gzip or xz,
 * told by its first bytes) is read entry by entry and written out again as the rootfs tar,
 * with the adaptation's files appended at its end; nothing is unpacked to disk. The metadata
 * tarball (metadata.yaml and the templates) is small and built in memory. The build is
 * deterministic (entries keep their headers, added ones carry the source's mtime), so prepare
 * can hash it once for the fingerprint Incus will give it, and apply build it again to upload.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { Header, Pack } from "tar-stream";
import { OpError } from "../../../src/errors.js";
import { type AdaptFile, adaptationFiles, metadataFiles, type TarballAdapt } from "./adapt.js";

/** The first bytes of each format op reads (tar's `ustar` magic sits at offset 257). */
const magic = {
  gzip: [0x1f, 0x8b],
  xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
  bzip2: [0x42, 0x5a, 0x68],
  zstd: [0x28, 0xb5, 0x2f, 0xfd],
} as const;

export type TarballFormat = "gzip" | "xz" | "tar";

/** What the first 512 bytes of a file say it is; an OpError naming the file when not a tarball. */
export function tarballFormat(head: Buffer, file: string): TarballFormat {
  const starts = (bytes: readonly number[]) => bytes.every((byte, i) => head[i] === byte);
  if (starts(magic.gzip)) return "gzip";
  if (starts(magic.xz)) return "xz";
  if (head.subarray(257, 262).toString("latin1") === "ustar") return "tar";
  const other = starts(magic.bzip2) ? "bzip2" : starts(magic.zstd) ? "zstd" : undefined;
  if (other !== undefined)
    throw new OpError(
      "invalid-state",
      `${file} is compressed with ${other}, which op does not read`,
      {
        hint: `decompress it (or recompress it with gzip or xz) and point "tarball" at the result`,
      },
    );
  throw new OpError(
    "invalid-state",
    `${file} is not a tarball: neither gzip, xz nor tar (${head.length === 0 ? "it is empty" : `it starts with ${JSON.stringify(head.subarray(0, 16).toString("latin1"))}`})`,
    { hint: "give a system tarball (tar, tar.gz or tar.xz of a root file system)" },
  );
}

/**
 * The tar bytes of the source, decompressed as its first bytes say; `onRaw` sees the file's
 * own bytes (for its SHA-256).
 */
async function tarStream(file: string, fd: number, onRaw: (chunk: Buffer) => void) {
  const { readSync } = process.getBuiltinModule("node:fs");
  const head = Buffer.alloc(512);
  const format = tarballFormat(head.subarray(0, readSync(fd, head, 0, 512, 0)), file);
  // Each decoder is loaded only for a tarball that needs it (xz's is WebAssembly), and before
  // the file is opened for reading: a flowing stream does not wait for an import.
  const xz = format === "xz" ? await import("xz-decompress") : undefined;
  const raw = createReadStream("", { fd, autoClose: false, start: 0 });
  raw.on("data", (chunk) => {
    onRaw(chunk as Buffer);
  });
  if (format === "tar") return raw;
  const decoded =
    xz === undefined
      ? raw.pipe(process.getBuiltinModule("node:zlib").createGunzip())
      : Readable.fromWeb(new xz.XzReadableStream(Readable.toWeb(raw) as never) as never);
  raw.on("error", (error) => decoded.destroy(error));
  return decoded;
}

export interface BuildInput {
  /** The tarball's path (for messages) and its descriptor, opened as a regular file. */
  file: string;
  fd: number;
  /** The source's SHA-256: metadata.yaml names it. */
  sourceSha256: string;
  /** Seconds since the epoch: creation_date, and the mtime of every added entry. */
  created: number;
  adapt: TarballAdapt;
}

/**
 * The rootfs stream: every source entry passed through (its header and bytes unchanged, except
 * an entry the adaptation replaces), then the adaptation's files with the directories they
 * need that the source lacks. `onRaw` sees the source file's bytes (for its SHA-256).
 */
export async function adaptedRootfs(
  input: Omit<BuildInput, "sourceSha256">,
  onRaw: (chunk: Buffer) => void,
  /** Runs once the source is read, before the added files: throwing aborts the stream. */
  sourceRead: () => void = () => {},
): Promise<Readable> {
  const { extract, pack } = await import("tar-stream");
  const added = adaptationFiles(input.adapt);
  const replaced = new Set(added.map((file) => file.path));
  const out = pack();
  const source = await tarStream(input.file, input.fd, onRaw);
  const parse = extract();
  const fail = (error: unknown) => out.destroy(notATar(input.file, error));
  source.on("error", fail);
  void (async () => {
    const seen = new Set<string>();
    let entries = 0;
    source.pipe(parse as never);
    for await (const entry of parse) {
      entries++;
      const path = normalize(entry.header.name);
      seen.add(path);
      if (replaced.has(path)) {
        entry.resume();
        continue;
      }
      await copyEntry(out, entry.header, entry as unknown as Readable, input.file);
    }
    if (entries === 0) throw new OpError("invalid-state", `${input.file} is an empty tarball`);
    sourceRead();
    for (const need of requiredUnits(input.adapt)) {
      if (!need.paths.some((path) => seen.has(path)))
        throw new OpError(
          "invalid-state",
          `${input.file}: adapt.${need.option} needs ${need.what}, which the tarball does not hold (looked for ${need.paths.map((p) => `/${p}`).join(" and ")})`,
          { hint: `install it in the tarball, or drop adapt.${need.option}` },
        );
    }
    for (const file of added) {
      for (const dir of parents(file.path)) {
        if (seen.has(dir)) continue;
        seen.add(dir);
        await addEntry(out, { name: `./${dir}/`, type: "directory", mode: 0o755 }, input.created);
      }
      await addEntry(
        out,
        headerOf(file),
        input.created,
        file.type === "file" ? file.content : undefined,
      );
      seen.add(file.path);
    }
    out.finalize();
  })().catch(fail);
  // A Node stream over tar-stream's own (streamx), whose pipe() would end the destination: the
  // upload writes the multipart boundary after it.
  return Readable.from(out as AsyncIterable<Buffer>, { objectMode: false });
}

/** Units an adaptation links to: the tarball must hold them or the link would dangle. */
function requiredUnits(adapt: TarballAdapt): { option: string; what: string; paths: string[] }[] {
  if (adapt.networkd !== true) return [];
  const unit = "systemd/system/systemd-networkd.service";
  return [
    { option: "networkd", what: "systemd-networkd", paths: [`lib/${unit}`, `usr/lib/${unit}`] },
  ];
}

function copyEntry(out: Pack, header: Header, body: Readable, file: string): Promise<void> {
  if (header.pax !== null && header.pax !== undefined) {
    // tar-stream decodes pax values as UTF-8: a binary one (an xattr such as
    // security.capability) would come out changed, so it is refused, not corrupted.
    for (const [key, value] of Object.entries(header.pax as Record<string, string>)) {
      if (value.includes("\uFFFD"))
        throw new OpError(
          "invalid-state",
          `${file}: entry ${header.name} carries the binary pax record ${key}, which op cannot copy unchanged`,
          { hint: "make the tarball without xattrs (tar without --xattrs), or give a split image" },
        );
    }
  }
  return new Promise((resolve, reject) => {
    const sink = out.entry(header, (error) => (error ? reject(error) : resolve()));
    body.on("error", reject);
    body.pipe(sink as never);
  });
}

function addEntry(
  out: Pack,
  header: Partial<Header> & { name: string },
  created: number,
  content?: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const full = { uid: 0, gid: 0, mtime: new Date(created * 1000), ...header };
    const done = (error?: Error | null) => (error ? reject(error) : resolve());
    if (content === undefined) out.entry(full, done);
    else out.entry(full, content, done);
  });
}

function headerOf(file: AdaptFile): Partial<Header> & { name: string } {
  if (file.type === "symlink")
    return { name: `./${file.path}`, type: "symlink", linkname: file.target, mode: 0o777 };
  return { name: `./${file.path}`, type: "file", mode: file.mode };
}

/** `./etc/x/`, `/etc/x` and `etc/x` are the same path in a rootfs. */
export function normalize(name: string): string {
  return name.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
}

/** `etc/a/b` → `etc`, `etc/a`. */
function parents(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** The source failed to read as a tar: say which file, keep the library's words. */
function notATar(file: string, error: unknown): Error {
  if (error instanceof OpError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OpError("invalid-state", `${file} could not be read as a tarball: ${message}`, {
    hint: "is it truncated or damaged? `tar -tf FILE` tells",
  });
}

/** The metadata tar: metadata.yaml and templates/, deterministic for the same input. */
export async function metadataTar(input: Omit<BuildInput, "fd">): Promise<Buffer> {
  const { pack } = await import("tar-stream");
  const out = pack();
  const chunks: Buffer[] = [];
  out.on("data", (chunk) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    out.on("end", resolve);
    out.on("error", reject);
  });
  const files = metadataFiles(input);
  for (const dir of [...new Set(files.flatMap((file) => parents(file.path)))])
    await addEntry(out, { name: `${dir}/`, type: "directory", mode: 0o755 }, input.created);
  for (const file of files)
    await addEntry(
      out,
      { name: file.path, type: "file", mode: 0o644 },
      input.created,
      file.content,
    );
  out.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * The two tarballs to upload for an image prepare hashed: the rootfs is built as Incus reads
 * it, and aborted before its end when the source is no longer the one the plan hashed.
 */
export async function imageUpload(image: {
  tarball: string;
  sourceSha256: string;
  created: number;
  adapt: TarballAdapt;
}): Promise<{ metadata: Readable; rootfs: Readable }> {
  const { openRegularFile } = await import("../../../src/files.js");
  const { fd } = openRegularFile(image.tarball, { what: "image tarball" });
  const { closeSync } = process.getBuiltinModule("node:fs");
  const hash = process.getBuiltinModule("node:crypto").createHash("sha256");
  const input = { ...image, file: image.tarball, fd };
  try {
    const metadata = Readable.from([await metadataTar(input)]);
    const rootfs = await adaptedRootfs(
      input,
      (chunk) => void hash.update(chunk),
      () => {
        const read = hash.digest("hex");
        if (read !== image.sourceSha256)
          throw new OpError(
            "invalid-state",
            `${image.tarball} changed since the plan (SHA-256 ${read.slice(0, 12)}, planned ${image.sourceSha256.slice(0, 12)})`,
            { hint: "run op apply again: it plans from the tarball as it is now" },
          );
      },
    );
    rootfs.on("close", () => closeSync(fd));
    return { metadata, rootfs };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
