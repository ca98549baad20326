/**
 * The ledger's hashing and canonical JSON. SHA-256 comes from node:crypto: bench/ledger.ts
 * measures it against @noble/hashes (OpenSSL uses the CPU's SHA extensions; the pure-JS hash is
 * 3-4x slower on a record-sized input), and a string digest avoids allocating a Buffer per hash,
 * which costs more than the hash itself.
 */
import { hash } from "node:crypto";
import canonicalize from "canonicalize";

export const HASH_BYTES = 32;

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Buffer {
  return hash("sha256", data, "buffer");
}

/** SHA-256 of `data` as a latin1 string: one char per byte, and no Buffer allocated. */
export function sha256Latin1(data: Uint8Array): string {
  return hash("sha256", data, "latin1");
}

/** Whether SHA-256(`input`) equals the 32 bytes of `expected` starting at `at` (verify's loop). */
export function sha256Matches(input: Uint8Array, expected: Uint8Array, at: number): boolean {
  const digest = sha256Latin1(input);
  for (let i = 0; i < HASH_BYTES; i++) {
    if (digest.charCodeAt(i) !== expected[at + i]) return false;
  }
  return true;
}

/** The RFC 6962 leaf hash, SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + data.length);
  input[0] = 0;
  input.set(data, 1);
  return sha256(input);
}

/** The `prev` of record 1: bound to the origin so two hosts' chains cannot be spliced. */
export function genesisHash(origin: string): Buffer {
  return sha256(Buffer.from(`op ledger genesis\n${origin}`, "utf8"));
}

/** RFC 8785 canonical JSON of a JSON-able value (throws on NaN, Infinity, lone surrogates). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value has no JSON form");
  return text;
}
