/**
 * The checkpoint signing key: an Ed25519 secret kept outside the database (op's default is
 * /etc/op/ledger.key), so whoever can rewrite the database files cannot also re-sign it.
 * Both files hold one base64 line; `<keyFile>.pub` is the public half for anyone who checks.
 *
 * The key is read without following a symlink and must be a regular file of op's user, mode
 * 0600 or stricter, in a directory no one else may write. It is created whole or not at all: a
 * temporary file written and synced, then linked to its name (which fails if the name exists,
 * as O_EXCL would), so a full disk never leaves a partial key.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { OpError } from "../errors.js";
import {
  fileError,
  openRegularFile,
  readRegularFile,
  refuseForeignOrShared,
  syncDirectory,
  writeFileAtomic,
} from "../files.js";
import { getPublicKey, keygen } from "./ed25519.js";

export interface SigningKey {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** What the key file holds: a checked secret, nothing, or an empty file (an old op's crash). */
export type SecretState =
  | { state: "present"; secret: Uint8Array }
  | { state: "missing" }
  | { state: "empty" };

const KEY_BYTES = 32;
const KEY_FILE_LIMIT = 4096;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

export function publicKeyFile(keyFile: string): string {
  return `${keyFile}.pub`;
}

export function encodeKey(key: Uint8Array): string {
  return Buffer.from(key).toString("base64");
}

function decodeKey(text: string, file: string): Uint8Array {
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== KEY_BYTES || key.toString("base64") !== text.trim()) {
    throw new OpError(
      "invalid-state",
      `${file} is not an Ed25519 key (one base64 line of 32 bytes)`,
      {
        hint: "restore the key file from a backup; a new key cannot sign for the old checkpoints",
      },
    );
  }
  return key;
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, "0");
}

/** A key in a directory others may write can be swapped for theirs: refused. */
function checkKeyDirectory(keyFile: string): void {
  const directory = dirname(keyFile);
  let stats: Stats;
  try {
    stats = lstatSync(directory);
  } catch (error) {
    throw fileError(error, directory, "cannot read the ledger key's directory");
  }
  const uid = process.getuid?.() ?? 0;
  // root's directories (/etc/op) hold a key of any user op runs as.
  if (stats.uid !== uid && stats.uid !== 0)
    refuseForeignOrShared(directory, stats, "ledger key's directory");
  if ((stats.mode & 0o022) !== 0) {
    throw new OpError(
      "permission-denied",
      `${directory}: the ledger key's directory may be written by others (mode ${octal(stats.mode)})`,
      { hint: `chmod go-w ${directory}, or keep the key in a directory only op's user may write` },
    );
  }
}

/**
 * The secret half of the signing key, with every check a key file can fail (a regular file,
 * no symlink, op's own, private, well formed); the public half is derived later.
 */
export function readSigningSecret(keyFile: string): SecretState {
  let opened: { fd: number; size: number };
  try {
    opened = openRegularFile(keyFile, {
      what: "ledger key",
      maxBytes: KEY_FILE_LIMIT,
      noFollow: true,
    });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    if ((cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      return { state: "missing" };
    throw error;
  }
  closeSync(opened.fd);
  const stats = lstatSync(keyFile);
  refuseForeignOrShared(keyFile, stats, "ledger key");
  if ((stats.mode & 0o077) !== 0) {
    throw new OpError(
      "permission-denied",
      `the ledger key ${keyFile} is readable by other users (mode ${octal(stats.mode)})`,
      { hint: `chmod 600 ${keyFile}` },
    );
  }
  checkKeyDirectory(keyFile);
  const text = readRegularFile(keyFile, {
    what: "ledger key",
    maxBytes: KEY_FILE_LIMIT,
    noFollow: true,
  }).toString("utf8");
  if (text.trim() === "") return { state: "empty" };
  return { state: "present", secret: decodeKey(text, keyFile) };
}

/**
 * Creates a new key file whole: written to a temporary name and synced, then linked to
 * `keyFile` (`replace`: renamed over it, for an empty key file an older op left).
 */
function installKeyFile(keyFile: string, text: string, replace: boolean): void {
  const directory = dirname(keyFile);
  const temporary = join(directory, `.${process.pid}.${Date.now().toString(36)}.key.tmp`);
  let fd: number | undefined;
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    fd = openSync(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    const bytes = Buffer.from(text, "utf8");
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (replace) renameSync(temporary, keyFile);
    else linkSync(temporary, keyFile);
    syncDirectory(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new OpError(
        "invalid-state",
        `${keyFile}: a ledger key appeared while op was creating one`,
        {
          hint: "another op created it at the same time; run op again",
          cause: error,
        },
      );
    }
    throw fileError(error, keyFile, "cannot create the ledger key");
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // renamed, or never created
    }
  }
}

/** Writes `<keyFile>.pub` by rename (never through a symlink there) unless it is right already. */
export function writePublicKey(keyFile: string, publicKey: Uint8Array): void {
  const file = publicKeyFile(keyFile);
  const text = `${encodeKey(publicKey)}\n`;
  try {
    const current = readRegularFile(file, {
      what: "ledger public key",
      maxBytes: KEY_FILE_LIMIT,
      noFollow: true,
    });
    if (current.toString("utf8") === text) return;
  } catch {
    // missing, a symlink or unreadable: replaced below
  }
  writeFileAtomic(file, text, 0o644, "ledger public key");
}

/** A new key pair, installed at `keyFile` (replacing an empty file when `replaceEmpty`). */
export function createSigningKey(keyFile: string, replaceEmpty: boolean): SigningKey {
  const key = keygen();
  installKeyFile(keyFile, `${encodeKey(key.secretKey)}\n`, replaceEmpty);
  writePublicKey(keyFile, key.publicKey);
  return key;
}

/** Key rotation, step 1: a new key pair, its secret written whole to `<keyFile>.next`. */
export function stageSigningKey(keyFile: string): SigningKey {
  const key = keygen();
  writeFileAtomic(`${keyFile}.next`, `${encodeKey(key.secretKey)}\n`, 0o600, "new ledger key");
  return key;
}

/**
 * Key rotation, last step (once the ledger has recorded the new key): the old secret is kept
 * as `<keyFile>.old`, the staged one renamed into place, the public half rewritten.
 */
export function installStagedKey(keyFile: string, next: SigningKey): void {
  const old = `${keyFile}.old`;
  try {
    try {
      linkSync(keyFile, old);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      renameSync(old, `${old}.${Date.now()}`);
      linkSync(keyFile, old);
    }
    renameSync(`${keyFile}.next`, keyFile);
    syncDirectory(dirname(keyFile));
  } catch (error) {
    throw fileError(error, keyFile, `cannot install the new ledger key from ${keyFile}.next`);
  }
  writePublicKey(keyFile, next.publicKey);
}

/** The key pair of a checked secret; refreshes `<keyFile>.pub` with its public half. */
export function completeSigningKey(keyFile: string, secretKey: Uint8Array): SigningKey {
  const key = { secretKey, publicKey: getPublicKey(secretKey) };
  writePublicKey(keyFile, key.publicKey);
  return key;
}

/** The public key verify checks with, and what is wrong with the key files short of failing. */
export interface PublicKeyFound {
  publicKey: Uint8Array | undefined;
  warnings: string[];
}

/**
 * The public key checkpoints are checked with, never creating anything: derived from the secret
 * when it is readable (it is the authority), else read from `<keyFile>.pub`. A secret that
 * others may read is used, with a warning: verify still says whether the ledger is intact.
 */
export function loadPublicKey(keyFile: string): PublicKeyFound {
  const warnings: string[] = [];
  try {
    const text = readRegularFile(keyFile, {
      what: "ledger key",
      maxBytes: KEY_FILE_LIMIT,
      noFollow: true,
    }).toString("utf8");
    const mode = lstatSync(keyFile).mode;
    if ((mode & 0o077) !== 0) {
      warnings.push(
        `the ledger key ${keyFile} is readable by other users (mode ${octal(mode)}): anyone who read it can forge checkpoints; chmod 600 it and consider \`op ledger rotate-key\``,
      );
    }
    if (text.trim() !== "") return { publicKey: getPublicKey(decodeKey(text, keyFile)), warnings };
  } catch {
    // no readable secret: the public half below
  }
  try {
    const pub = readRegularFile(publicKeyFile(keyFile), {
      what: "ledger public key",
      maxBytes: KEY_FILE_LIMIT,
    }).toString("utf8");
    return { publicKey: decodeKey(pub, publicKeyFile(keyFile)), warnings };
  } catch {
    return { publicKey: undefined, warnings };
  }
}
