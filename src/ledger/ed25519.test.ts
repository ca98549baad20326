import { ed25519 as noble } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { getPublicKey, keygen, signMessage, verifySignature } from "./ed25519.js";

// RFC 8032 §7.1, test 2: a one-byte message.
const rfcSecret = Buffer.from(
  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
  "hex",
);
const rfcPublic = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const rfcMessage = Buffer.from("72", "hex");
const rfcSignature =
  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

describe("Ed25519 on node:crypto", () => {
  it("matches RFC 8032's test vector", () => {
    expect(Buffer.from(getPublicKey(rfcSecret)).toString("hex")).toBe(rfcPublic);
    expect(Buffer.from(signMessage(rfcMessage, rfcSecret)).toString("hex")).toBe(rfcSignature);
    expect(
      verifySignature(Buffer.from(rfcSignature, "hex"), rfcMessage, Buffer.from(rfcPublic, "hex")),
    ).toBe(true);
  });

  it("makes the same keys and signatures as @noble/curves, each verifying the other's", () => {
    const { secretKey, publicKey } = keygen();
    expect(noble.getPublicKey(secretKey)).toEqual(publicKey);
    const message = Buffer.from("op ledger checkpoint\nsize 3\n");
    const ours = signMessage(message, secretKey);
    expect(ours).toEqual(noble.sign(message, secretKey));
    expect(noble.verify(ours, message, publicKey)).toBe(true);
    const theirs = noble.keygen();
    expect(verifySignature(noble.sign(message, theirs.secretKey), message, theirs.publicKey)).toBe(
      true,
    );
  });

  it("rejects a wrong, altered or malformed signature without throwing", () => {
    const { secretKey, publicKey } = keygen();
    const message = Buffer.from("m");
    const signature = signMessage(message, secretKey);
    expect(verifySignature(signature, Buffer.from("n"), publicKey)).toBe(false);
    const altered = Uint8Array.from(signature);
    altered[5] = (altered[5] ?? 0) ^ 1;
    expect(verifySignature(altered, message, publicKey)).toBe(false);
    expect(verifySignature(signature.subarray(0, 10), message, publicKey)).toBe(false);
    expect(verifySignature(signature, message, publicKey.subarray(0, 31))).toBe(false);
    expect(verifySignature(signature, message, keygen().publicKey)).toBe(false);
  });
});
