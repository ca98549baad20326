/**
 * Checkpoints: a signed note over the ledger's (origin, size, root hash), in the spirit of a
 * transparency log's signed tree head. Plain text, so it can be saved anywhere and handed back
 * to `op ledger verify --trusted FILE`:
 *
 *   op ledger checkpoint
 *   origin op@web1
 *   size 1000
 *   root <hex hash of record 1000 (for size 0, the genesis prev)>
 *   time 2025-01-01T00:00:00.000Z
 *   key <base64 Ed25519 public key of the signer>
 *   signature <base64 Ed25519 signature over every byte before this line>
 *
 * The root is the head of a hash chain, so it commits to every record up to `size`.
 */

import { OpError } from "../errors.js";
import { signMessage, verifySignature } from "./ed25519.js";
import { encodeKey, type SigningKey } from "./keys.js";

const HEADER = "op ledger checkpoint";
const FIELDS = ["origin", "size", "root", "time", "key"] as const;

export interface Checkpoint {
  origin: string;
  size: number;
  /** Hex. */
  root: string;
  time: string;
  /** Base64 public key of the signer (informational: verify checks with the ledger's key). */
  key: string;
}

export interface ParsedCheckpoint extends Checkpoint {
  /** The bytes the signature covers. */
  signed: Uint8Array;
  signature: Uint8Array;
}

function body(checkpoint: Checkpoint): string {
  return `${HEADER}\n${FIELDS.map((field) => `${field} ${checkpoint[field]}`).join("\n")}\n`;
}

export function signCheckpoint(checkpoint: Omit<Checkpoint, "key">, key: SigningKey): string {
  const signed = body({ ...checkpoint, key: encodeKey(key.publicKey) });
  const signature = signMessage(Buffer.from(signed, "utf8"), key.secretKey);
  return `${signed}signature ${encodeKey(signature)}\n`;
}

function malformed(why: string): OpError {
  return new OpError("invalid-file", `not an op ledger checkpoint: ${why}`, {
    hint: "pass the text `op ledger checkpoint` printed or `op ledger export` saved, unchanged",
  });
}

/** Parses checkpoint text (CRLF and trailing blank lines tolerated); throws on anything else. */
export function parseCheckpoint(text: string): ParsedCheckpoint {
  const lines = text.replace(/\r\n/g, "\n").replace(/\s+$/, "").split("\n");
  if (lines[0] !== HEADER) throw malformed(`the first line must be "${HEADER}"`);
  if (lines.length !== FIELDS.length + 2) {
    throw malformed(`expected ${FIELDS.length + 2} lines, found ${lines.length}`);
  }
  const values: Record<string, string> = {};
  FIELDS.forEach((field, i) => {
    const line = lines[i + 1] ?? "";
    if (!line.startsWith(`${field} `)) throw malformed(`line ${i + 2} must start with "${field} "`);
    values[field] = line.slice(field.length + 1);
  });
  const last = lines[FIELDS.length + 1] ?? "";
  if (!last.startsWith("signature ")) throw malformed(`the last line must be "signature <base64>"`);
  const size = Number(values.size);
  if (!Number.isSafeInteger(size) || size < 0 || String(size) !== values.size) {
    throw malformed(`size "${values.size}" is not a record count`);
  }
  if (!/^[0-9a-f]{64}$/.test(values.root ?? "")) throw malformed("root must be 64 hex digits");
  const checkpoint: Checkpoint = {
    origin: values.origin ?? "",
    size,
    root: values.root ?? "",
    time: values.time ?? "",
    key: values.key ?? "",
  };
  return {
    ...checkpoint,
    // Re-rendered from the parsed fields, so the bytes checked are the bytes of a canonical note.
    signed: Buffer.from(body(checkpoint), "utf8"),
    signature: Buffer.from(last.slice("signature ".length), "base64"),
  };
}

export function signatureValid(checkpoint: ParsedCheckpoint, publicKey: Uint8Array): boolean {
  return verifySignature(checkpoint.signature, checkpoint.signed, publicKey);
}
