/**
 * Derived data that only ever saves time (nftables' normalised tables). Nothing in it is
 * believed unless it verifies: each entry carries the exact input it was computed from and an
 * HMAC-SHA256 of input and output under a secret key kept beside the ledger key (as secret as
 * it), so an entry planted or edited by anyone without that key is ignored and replaced. The
 * directory is op's alone: 0700 whatever the umask, refused when another user owns it or may
 * write it.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  fstatSync,
  readdirSync,
  readSync,
  statSync,
  unlinkSync,
  utimesSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { OpError } from "./errors.js";
import {
  ensurePrivateDirectory,
  openRegularFile,
  readRegularFile,
  refuseForeignOrShared,
  writeFileAtomic,
} from "./files.js";
import type { Logger } from "./plugin.js";

/** Bytes of the HMAC key. */
const keyBytes = 32;
/** An entry larger than this is not one op wrote. */
const maxEntryBytes = 64 * 1024 * 1024;

export interface Cache {
  /** The output stored for exactly this input, if its entry verifies; else undefined. */
  get(input: string): string | undefined;
  /** Stores the output for the input; a failure to write only logs (the cache is disposable). */
  put(input: string, output: string): void;
}

export interface CacheOptions {
  /** op's cache directory (`OP_CACHE_DIR`); no directory, no cache. */
  dir: string | undefined;
  /** The HMAC key's file; no key file, no cache. */
  keyFile: string | undefined;
  /** The sub-directory of this kind of entry, e.g. "nftables". */
  name: string;
  /** Entries kept; the least recently used go first. */
  maxEntries: number;
  log: Logger;
}

/**
 * The cache of one kind of entry, or undefined when there is none to use (no directory or
 * key configured, or the file system refused to hold them). A directory or key that others
 * could have written is refused with an error: it means someone else could steer op.
 */
export function openCache(options: CacheOptions): Cache | undefined {
  const { dir, keyFile, name, log } = options;
  if (dir === undefined || keyFile === undefined) return undefined;
  const entries = join(dir, name);
  let key: Buffer;
  try {
    ensurePrivateDirectory(dir, "cache directory");
    ensurePrivateDirectory(entries, "cache directory");
    key = loadOrCreateKey(keyFile);
  } catch (error) {
    if (error instanceof OpError && error.code === "file-error") {
      log.warn(`${error.message}; running without the ${name} cache`);
      return undefined;
    }
    throw error;
  }
  return new AuthenticatedCache(entries, key, name, options.maxEntries, log);
}

/** The key, made on first use (0600, written atomically, never through a symlink). */
function loadOrCreateKey(keyFile: string): Buffer {
  let opened: { fd: number; size: number };
  try {
    opened = openRegularFile(keyFile, { what: "cache key", maxBytes: 4096, noFollow: true });
  } catch (error) {
    if (causeCode(error) !== "ENOENT") throw error;
    ensurePrivateDirectory(dirname(keyFile), "ledger key directory");
    const key = randomBytes(keyBytes);
    writeFileAtomic(keyFile, `${key.toString("hex")}\n`, 0o600, "cache key");
    return key;
  }
  try {
    const stats = fstatSync(opened.fd);
    refuseForeignOrShared(keyFile, stats, "cache key");
    if ((stats.mode & 0o077) !== 0) {
      throw new OpError(
        "permission-denied",
        `${keyFile}: the cache key may be read by others (mode ${(stats.mode & 0o777).toString(8).padStart(4, "0")})`,
        { hint: `chmod 600 ${keyFile}, or delete it and op makes a new one` },
      );
    }
    const buffer = Buffer.alloc(opened.size);
    const read = readSync(opened.fd, buffer, 0, buffer.length, 0);
    const key = Buffer.from(buffer.subarray(0, read).toString("utf8").trim(), "hex");
    if (key.length !== keyBytes) {
      throw new OpError("invalid-state", `${keyFile}: the cache key is not ${keyBytes} hex bytes`, {
        hint: "delete it; op makes a new one (the cache is only ever rebuilt)",
      });
    }
    return key;
  } finally {
    closeSync(opened.fd);
  }
}

function causeCode(error: unknown): string | undefined {
  return ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
}

interface Entry {
  input: string;
  output: string;
  mac: string;
}

class AuthenticatedCache implements Cache {
  constructor(
    private readonly dir: string,
    private readonly key: Buffer,
    private readonly name: string,
    private readonly maxEntries: number,
    private readonly log: Logger,
  ) {}

  get(input: string): string | undefined {
    const file = this.fileFor(input);
    let entry: Entry;
    try {
      const text = readRegularFile(file, {
        what: "cache entry",
        maxBytes: maxEntryBytes,
        noFollow: true,
      }).toString("utf8");
      entry = JSON.parse(text) as Entry;
    } catch (error) {
      if (causeCode(error) !== "ENOENT") this.log.debug(`ignoring unreadable ${file}: ${error}`);
      return undefined;
    }
    const expected = this.mac(input, String(entry?.output));
    const given = Buffer.from(typeof entry?.mac === "string" ? entry.mac : "", "hex");
    if (
      entry?.input !== input ||
      typeof entry.output !== "string" ||
      given.length !== expected.length ||
      !timingSafeEqual(given, expected)
    ) {
      this.log.debug(`ignoring ${file}: it does not verify (not written by op with this key)`);
      return undefined;
    }
    try {
      const now = new Date();
      utimesSync(file, now, now); // recently used: kept by prune
    } catch {
      // only the eviction order suffers
    }
    return entry.output;
  }

  put(input: string, output: string): void {
    const file = this.fileFor(input);
    const entry: Entry = { input, output, mac: this.mac(input, output).toString("hex") };
    try {
      writeFileAtomic(file, JSON.stringify(entry), 0o600, "cache entry");
    } catch (error) {
      this.log.warn(`could not write ${this.name} cache entry: ${(error as Error).message}`);
      return;
    }
    this.prune();
  }

  private fileFor(input: string): string {
    return join(this.dir, `${createHash("sha256").update(input).digest("hex")}.json`);
  }

  private mac(input: string, output: string): Buffer {
    return createHmac("sha256", this.key)
      .update(`${this.name}\0${input.length}\0`)
      .update(input)
      .update("\0")
      .update(output)
      .digest();
  }

  /** Keeps the `maxEntries` most recently used entries; errors only log. */
  private prune(): void {
    try {
      const names = readdirSync(this.dir).filter((name) => name.endsWith(".json"));
      if (names.length <= this.maxEntries) return;
      const entries = names.map((name) => ({
        file: join(this.dir, name),
        used: statSync(join(this.dir, name)).mtimeMs,
      }));
      entries.sort((a, b) => b.used - a.used);
      for (const entry of entries.slice(this.maxEntries)) unlinkSync(entry.file);
    } catch (error) {
      this.log.debug(`could not prune the ${this.name} cache: ${String(error)}`);
    }
  }
}
