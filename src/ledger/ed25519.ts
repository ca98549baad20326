/**
 * Ed25519 on node:crypto (OpenSSL) with raw 32-byte keys, the form op stores. The first
 * version used @noble/curves: its import and first signature weighed on every op apply
 * (precomputation tables built per process); OpenSSL's are far cheaper. The
 * keys and signatures are the same bytes (Ed25519 is deterministic); a test checks that each
 * library verifies the other's signatures.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

// DER headers that wrap a raw Ed25519 seed (PKCS #8) and a raw public key (SPKI), RFC 8410.
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");
const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex");

function privateKeyOf(secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== 32)
    throw new Error(`an Ed25519 secret key has 32 bytes, not ${secretKey.length}`);
  return createPrivateKey({
    key: Buffer.concat([pkcs8Prefix, secretKey]),
    format: "der",
    type: "pkcs8",
  });
}

function rawPublic(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: "der", type: "spki" }).subarray(spkiPrefix.length));
}

export function keygen(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const secretKey = new Uint8Array(
    privateKey.export({ format: "der", type: "pkcs8" }).subarray(pkcs8Prefix.length),
  );
  return { secretKey, publicKey: rawPublic(publicKey) };
}

export function getPublicKey(secretKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyOf(secretKey)));
}

export function signMessage(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKeyOf(secretKey)));
}

/** False for a wrong signature and for malformed signature or key bytes alike. */
export function verifySignature(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({
      key: Buffer.concat([spkiPrefix, publicKey]),
      format: "der",
      type: "spki",
    });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
