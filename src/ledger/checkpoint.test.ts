import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint, signatureValid, signCheckpoint } from "./checkpoint.js";
import { verifySignature } from "./ed25519.js";
import type { SigningKey } from "./keys.js";

function newKey(): SigningKey {
  const { secretKey, publicKey } = ed25519.keygen();
  return { secretKey, publicKey };
}

const fields = {
  origin: "op@web1",
  size: 42,
  root: "ab".repeat(32),
  time: "2025-01-02T03:04:05.000Z",
};

describe("checkpoint text", () => {
  it("round-trips and verifies with the signer's key", () => {
    const key = newKey();
    const text = signCheckpoint(fields, key);
    expect(text.split("\n").slice(0, 6)).toEqual([
      "op ledger checkpoint",
      "origin op@web1",
      "size 42",
      `root ${"ab".repeat(32)}`,
      "time 2025-01-02T03:04:05.000Z",
      `key ${Buffer.from(key.publicKey).toString("base64")}`,
    ]);
    const parsed = parseCheckpoint(text);
    expect(parsed).toMatchObject(fields);
    expect(signatureValid(parsed, key.publicKey)).toBe(true);
  });

  it("tolerates CRLF line ends and trailing blank lines (a file saved elsewhere)", () => {
    const key = newKey();
    const text = `${signCheckpoint(fields, key).replace(/\n/g, "\r\n")}\r\n\r\n`;
    expect(signatureValid(parseCheckpoint(text), key.publicKey)).toBe(true);
  });

  it("is rejected with another key", () => {
    const parsed = parseCheckpoint(signCheckpoint(fields, newKey()));
    expect(signatureValid(parsed, newKey().publicKey)).toBe(false);
  });

  it.each([
    ["origin", "origin op@web1", "origin op@web2"],
    ["size", "size 42", "size 43"],
    ["root", `root ${"ab".repeat(32)}`, `root ${"ab".repeat(31)}ac`],
    ["time", "time 2025", "time 2026"],
  ])("is rejected when its %s is changed", (_field, from, to) => {
    const key = newKey();
    const text = signCheckpoint(fields, key).replace(from, to);
    expect(signatureValid(parseCheckpoint(text), key.publicKey)).toBe(false);
  });

  it("is rejected when its signature is damaged", () => {
    const key = newKey();
    const text = signCheckpoint(fields, key);
    const damaged = text.replace(
      /signature (.)/,
      (_m, c: string) => `signature ${c === "A" ? "B" : "A"}`,
    );
    expect(signatureValid(parseCheckpoint(damaged), key.publicKey)).toBe(false);
    const truncated = text.replace(
      /signature (.*)\n/,
      (_m, s: string) => `signature ${s.slice(8)}\n`,
    );
    expect(signatureValid(parseCheckpoint(truncated), key.publicKey)).toBe(false);
  });

  it.each([
    ["an empty text", ""],
    ["another header", "op checkpoint\n"],
    ["a missing line", "op ledger checkpoint\norigin o\nsize 1\nroot x\nsignature AA\n"],
    [
      "fields out of order",
      (t: string) => t.replace("origin op@web1\nsize 42", "size 42\norigin op@web1"),
    ],
    ["a size that is not a count", (t: string) => t.replace("size 42", "size 4.2")],
    ["a short root", (t: string) => t.replace(`root ${"ab".repeat(32)}`, "root abab")],
    ["no signature line", (t: string) => t.replace(/signature .*\n/, "sig x\n")],
  ])("rejects %s as an invalid file", (_what, make) => {
    const text = typeof make === "string" ? make : make(signCheckpoint(fields, newKey()));
    try {
      parseCheckpoint(text);
      expect.unreachable("parsed a malformed checkpoint");
    } catch (error) {
      expect(error).toBeInstanceOf(OpError);
      expect((error as OpError).code).toBe("invalid-file");
      expect((error as OpError).message).toMatch(/^not an op ledger checkpoint: /);
    }
  });
});

describe("checkpoint text, field by field", () => {
  const text = () => signCheckpoint(fields, newKey());
  const message = (make: (t: string) => string) => {
    try {
      parseCheckpoint(make(text()));
    } catch (error) {
      return (error as OpError).message.replace(/^not an op ledger checkpoint: /, "");
    }
    return "parsed";
  };

  it.each([
    [
      "another first line",
      (t: string) => t.replace("op ledger checkpoint", "op ledger checkpoints"),
      'the first line must be "op ledger checkpoint"',
    ],
    ["a missing line", (t: string) => t.replace(/time .*\n/, ""), "expected 7 lines, found 6"],
    [
      "an extra line",
      (t: string) => t.replace("time", "note x\ntime"),
      "expected 7 lines, found 8",
    ],
    [
      "a field without its space",
      (t: string) => t.replace("origin op@web1", "originop@web1"),
      'line 2 must start with "origin "',
    ],
    [
      "a misspelt last field",
      (t: string) => t.replace("key ", "kex "),
      'line 6 must start with "key "',
    ],
    [
      "a signature line without its space",
      (t: string) => t.replace("signature ", "signature"),
      'the last line must be "signature <base64>"',
    ],
    [
      "a negative size",
      (t: string) => t.replace("size 42", "size -1"),
      'size "-1" is not a record count',
    ],
    [
      "a size with a leading zero",
      (t: string) => t.replace("size 42", "size 042"),
      'size "042" is not a record count',
    ],
    [
      "a size past 2^53",
      (t: string) => t.replace("size 42", "size 9007199254740993"),
      'size "9007199254740993" is not a record count',
    ],
    [
      "an empty size",
      (t: string) => t.replace("size 42", "size "),
      'size "" is not a record count',
    ],
    [
      "a root with a 65th digit",
      (t: string) => t.replace(`root ${"ab".repeat(32)}`, `root ${"ab".repeat(32)}0`),
      "root must be 64 hex digits",
    ],
    [
      "a root after other text",
      (t: string) => t.replace(`root ${"ab".repeat(32)}`, `root x${"ab".repeat(32)}`),
      "root must be 64 hex digits",
    ],
    [
      "a root in capitals",
      (t: string) => t.replace(`root ${"ab".repeat(32)}`, `root ${"AB".repeat(32)}`),
      "root must be 64 hex digits",
    ],
  ])("names %s", (_what, make, why) => {
    expect(message(make)).toBe(why);
  });

  it("reads size 0 (an empty ledger's checkpoint) and keeps each field's whole value", () => {
    const key = newKey();
    const parsed = parseCheckpoint(
      signCheckpoint({ ...fields, origin: "op@a b", size: 0, time: "t 1" }, key),
    );
    expect(parsed).toMatchObject({ origin: "op@a b", size: 0, time: "t 1" });
    expect(parsed.key).toBe(Buffer.from(key.publicKey).toString("base64"));
    expect(signatureValid(parsed, key.publicKey)).toBe(true);
  });

  it("checks the canonical bytes: CRLF only at line ends, spaces at the end ignored", () => {
    const key = newKey();
    const signed = signCheckpoint(fields, key);
    // Carriage returns that are not line ends are content, which the signature does not cover.
    const returns = signed.replace("origin op@web1\n", "origin op@web1\r\r\n");
    expect(signatureValid(parseCheckpoint(returns), key.publicKey)).toBe(false);
    expect(signatureValid(parseCheckpoint(`${signed} \t\n`), key.publicKey)).toBe(true);
    const crlf = signed.replace(/\n/g, "\r\n");
    expect(parseCheckpoint(crlf).signed).toEqual(parseCheckpoint(signed).signed);
  });

  it("signs exactly the bytes before the signature line", () => {
    const key = newKey();
    const text = signCheckpoint(fields, key);
    const at = text.indexOf("signature ");
    const signature = Buffer.from(text.slice(at + "signature ".length).trim(), "base64");
    expect(verifySignature(signature, Buffer.from(text.slice(0, at)), key.publicKey)).toBe(true);
    expect(Buffer.from(parseCheckpoint(text).signed).toString()).toBe(text.slice(0, at));
  });
});
