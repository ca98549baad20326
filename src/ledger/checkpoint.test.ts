import { ed25519 } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { parseCheckpoint, signatureValid, signCheckpoint } from "./checkpoint.js";
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
