/**
 * The checkpoint signing key: an Ed25519 secret kept outside the database (op's default is
 * /etc/op/ledger.key), so whoever can rewrite the database files cannot also re-sign it.
 * Both files hold one base64 line; `<keyFile>.pub` is the public half for anyone who checks.
 */
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { OpError } from "../errors.js";
import { getPublicKey, keygen } from "./ed25519.js";

export interface SigningKey {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

const KEY_BYTES = 32;

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

/** What a failed key-file operation means to the user. */
function keyFileError(error: unknown, file: string, doing: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new OpError("permission-denied", `cannot ${doing} the ledger key ${file} (${code})`, {
      hint: "run op as root, or point it at a key file it may write (--ledger-key or OP_LEDGER_KEY)",
      cause: error,
    });
  }
  if (code === "ENOTDIR" || code === "EISDIR" || code === "ELOOP") {
    return new OpError("invalid-state", `cannot ${doing} the ledger key ${file} (${code})`, {
      hint: "the key path must be a regular file in a directory",
      cause: error,
    });
  }
  return error;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw keyFileError(error, file, "read");
  }
}

/** Writes the public half beside the secret (0644) unless it is already there and right. */
async function writePublicKey(keyFile: string, publicKey: Uint8Array): Promise<void> {
  const file = publicKeyFile(keyFile);
  const text = `${encodeKey(publicKey)}\n`;
  if ((await readIfExists(file)) === text) return;
  try {
    await writeFile(file, text, { mode: 0o644 });
    await chmod(file, 0o644);
  } catch (error) {
    throw keyFileError(error, file, "write");
  }
}

/** Loads the signing key if there is one (never creates it). */
async function loadSigningKey(keyFile: string): Promise<SigningKey | undefined> {
  const secretKey = await readSigningSecret(keyFile);
  return secretKey === undefined ? undefined : completeSigningKey(keyFile, secretKey);
}

/**
 * The secret half of the signing key if there is one, with every check a key file can fail
 * (readable, private, well formed); the public half is derived later by `completeSigningKey`.
 */
export async function readSigningSecret(keyFile: string): Promise<Uint8Array | undefined> {
  const existing = await readIfExists(keyFile);
  if (existing === undefined) return undefined;
  const mode = (await stat(keyFile)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new OpError(
      "permission-denied",
      `the ledger key ${keyFile} is readable by other users (mode ${mode.toString(8).padStart(4, "0")})`,
      { hint: `chmod 600 ${keyFile}` },
    );
  }
  return decodeKey(existing, keyFile);
}

/** The key pair of a checked secret; refreshes `<keyFile>.pub` with its public half. */
export async function completeSigningKey(
  keyFile: string,
  secretKey: Uint8Array,
): Promise<SigningKey> {
  const key = { secretKey, publicKey: getPublicKey(secretKey) };
  await writePublicKey(keyFile, key.publicKey);
  return key;
}

/**
 * Loads the signing key, creating it (0600, its directory 0700 if created) on first use.
 * A secret readable by others is refused: anyone who can read it can forge checkpoints.
 */
export async function loadOrCreateSigningKey(keyFile: string): Promise<SigningKey> {
  const existing = await loadSigningKey(keyFile);
  if (existing !== undefined) return existing;
  const { secretKey, publicKey } = keygen();
  try {
    await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
    // "wx": two first runs racing must not overwrite each other's key.
    await writeFile(keyFile, `${encodeKey(secretKey)}\n`, { mode: 0o600, flag: "wx" });
    await chmod(keyFile, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateSigningKey(keyFile);
    throw keyFileError(error, keyFile, "create");
  }
  await writePublicKey(keyFile, publicKey);
  return { secretKey, publicKey };
}

/**
 * The public key checkpoints are checked with, never creating anything: derived from the secret
 * when it is readable (it is the authority), else read from `<keyFile>.pub`.
 */
export async function loadPublicKey(keyFile: string): Promise<Uint8Array | undefined> {
  const secret = await readIfExists(keyFile).catch(() => undefined);
  if (secret !== undefined) return getPublicKey(decodeKey(secret, keyFile));
  const pub = await readIfExists(publicKeyFile(keyFile));
  return pub === undefined ? undefined : decodeKey(pub, publicKeyFile(keyFile));
}
