/**
 * Content-addressed blobs beside the ledger (`<ledger>.images/`): a run's pre-image is one
 * blob named by the SHA-256 of its bytes, and the run's ledger record holds only the hash, so
 * the chain stays small and the chain's signature covers the blob through that hash. A blob
 * is written and synced before the record that names it; a name (`post-RUN`) is a small file
 * holding a hash, for what is kept outside the chain.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import { OpError } from "../errors.js";
import { ensurePrivateDirectory, syncDirectory, writeFileAtomic } from "../files.js";

export interface BlobStore {
  /** Stores `text` under its SHA-256 (hex), synced; returns the hash. */
  put(text: string): string;
  /** The blob's text, checked against its hash; undefined when there is none. */
  get(hash: string): string | undefined;
  /** Points `name` at a stored blob. */
  name(name: string, hash: string): void;
  /** The hash `name` points at, if any. */
  named(name: string): string | undefined;
  /**
   * Keeps a file as a blob (an Incus backup, too large for a string): `fill` writes it at the
   * path it is given; the file is then synced and named by its SHA-256, which is returned.
   * Absent in stores that keep only text.
   */
  keepFile?(fill: (path: string) => Promise<void>): Promise<string>;
}

export function blobDirectory(ledgerDir: string): string {
  return `${ledgerDir}.images`;
}

const hashPattern = /^[0-9a-f]{64}$/;
const namePattern = /^[A-Za-z0-9_.-]{1,128}$/;

export function fileBlobStore(dir: string): BlobStore {
  const ready = () => ensurePrivateDirectory(dir, "ledger's image store");
  return {
    put(text) {
      const hash = sha256Hex(text);
      const path = join(dir, hash);
      // Same bytes, same name: a blob already there is this one.
      if (!existsSync(path)) {
        ready();
        writeFileAtomic(path, text, 0o600, "pre-image blob");
      }
      return hash;
    },
    get(hash) {
      if (!hashPattern.test(hash)) throw badReference(dir, `"${hash}" is not a SHA-256 hash`);
      const path = join(dir, hash);
      if (!existsSync(path)) return undefined;
      const text = readFileSync(path, "utf8");
      if (sha256Hex(text) !== hash) throw badReference(dir, `blob ${hash} does not match its hash`);
      return text;
    },
    name(name, hash) {
      if (!namePattern.test(name)) throw badReference(dir, `"${name}" is not a blob name`);
      ready();
      writeFileAtomic(join(dir, `${name}.ref`), hash, 0o600, "image reference");
    },
    named(name) {
      const path = join(dir, `${name}.ref`);
      return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
    },
    async keepFile(fill) {
      ready();
      const temporary = join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
      try {
        await fill(temporary);
        const hash = await fileSha256(temporary);
        const fd = openSync(temporary, "r");
        fsyncSync(fd);
        closeSync(fd);
        renameSync(temporary, join(dir, hash));
        syncDirectory(dir);
        return hash;
      } finally {
        rmSync(temporary, { force: true });
      }
    },
  };
}

/** The path of blob `hash` in `dir` once its bytes match it; undefined when there is none. */
export async function blobFile(dir: string, hash: string): Promise<string | undefined> {
  if (!hashPattern.test(hash)) throw badReference(dir, `"${hash}" is not a SHA-256 hash`);
  const path = join(dir, hash);
  if (!existsSync(path)) return undefined;
  if ((await fileSha256(path)) !== hash)
    throw badReference(dir, `blob ${hash} does not match its hash`);
  return path;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

function badReference(dir: string, what: string): OpError {
  return new OpError("invalid-state", `the image store ${dir}: ${what}`, {
    hint: "a blob was changed or removed by hand; op rollback cannot trust it (op ledger verify checks the records that name it)",
  });
}
