/**
 * The ledger's hashing and canonical JSON. SHA-256 comes from node:crypto: bench/ledger.ts
 * measures it against @noble/hashes (OpenSSL uses the CPU's SHA extensions; the pure-JS hash is
 * 3-4x slower on a record-sized input), and a string digest avoids allocating a Buffer per hash,
 * which costs more than the hash itself.
 *
 * Canonical JSON (RFC 8785) is op's own: the `canonicalize` package, which defines it in the
 * tests (hash.test.ts compares the two on thousands of generated values), was slower per
 * record; this walk builds strings directly and checks strings with the engine's isWellFormed.
 */
import { hash } from "node:crypto";

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
  const text = canonicalMember(value, 0);
  if (text === undefined) throw new TypeError("value has no JSON form");
  return text;
}

/** Deeper than this is a cycle, not a record. */
const maxDepth = 512;

function wellFormed(text: string): string {
  if (!text.isWellFormed()) throw new TypeError("a lone surrogate has no canonical JSON form");
  return text;
}

/** The canonical text of `value`, or undefined for what JSON leaves out (undefined, functions). */
function canonicalMember(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(wellFormed(value));
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`${value} has no JSON form`);
      // ECMAScript's number to string is the serialisation RFC 8785 §3.2.2.3 prescribes.
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      throw new TypeError("a BigInt has no JSON form");
    case "object":
      break;
    default:
      return undefined;
  }
  if (value === null) return "null";
  if (depth > maxDepth) throw new TypeError(`nested deeper than ${maxDepth} (a cycle?)`);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return canonicalMember(toJSON.call(value), depth + 1);
  if (Array.isArray(value)) {
    let text = "[";
    for (let i = 0; i < value.length; i++) {
      text += `${i === 0 ? "" : ","}${canonicalMember(value[i], depth + 1) ?? "null"}`;
    }
    return `${text}]`;
  }
  // Default sort order is by UTF-16 code units, as §3.2.3 requires.
  const keys = Object.keys(value).sort();
  let text = "{";
  for (const key of keys) {
    const member = canonicalMember((value as Record<string, unknown>)[key], depth + 1);
    if (member === undefined) continue;
    text += `${text.length === 1 ? "" : ","}${JSON.stringify(wellFormed(key))}:${member}`;
  }
  return `${text}}`;
}
