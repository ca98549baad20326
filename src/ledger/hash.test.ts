import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { canonicalJson, genesisHash, leafHash, sha256, sha256Matches } from "./hash.js";
import { BODY_AT, decodeRecord, encodeRecord, HASH_AT, LEAF_AT } from "./store.js";

const hex = (text: string) => Buffer.from(text, "hex");

describe("RFC 6962 leaf hash", () => {
  // The reference leaves and leaf hashes of the Certificate Transparency Merkle tree tests
  // (transparency-dev/merkle testonly, RFC 6962 hasher).
  const vectors: [string, string][] = [
    ["", "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ["00", "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ["10", "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"],
    ["2021", "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"],
    ["3031", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
    ["40414243", "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"],
    ["5051525354555657", "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"],
    [
      "606162636465666768696a6b6c6d6e6f",
      "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
  ];

  it.each(vectors)("leaf %j", (leaf, expected) => {
    expect(leafHash(hex(leaf)).toString("hex")).toBe(expected);
  });

  it("the tree hash of no leaves is SHA-256 of the empty string", () => {
    expect(sha256(new Uint8Array()).toString("hex")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });

  it("a stored record's hash is the leaf hash of prev ‖ body, and verify's check agrees", () => {
    const prev = genesisHash("op@test");
    const body = canonicalJson({ seq: 1, target: "inet/t", changes: ["é", 1.5] });
    const { value, hash } = encodeRecord(prev, body);
    const expected = leafHash(Buffer.concat([prev, Buffer.from(body, "utf8")]));
    expect(hash.toString("hex")).toBe(expected.toString("hex"));
    expect(value.subarray(HASH_AT, LEAF_AT)).toEqual(expected);
    expect(decodeRecord(value)?.body).toBe(body);
    expect(value.length).toBe(BODY_AT + Buffer.byteLength(body));
    expect(sha256Matches(value.subarray(LEAF_AT), value, HASH_AT)).toBe(true);
    const last = value.length - 1;
    value[last] = (value[last] ?? 0) ^ 1;
    expect(sha256Matches(value.subarray(LEAF_AT), value, HASH_AT)).toBe(false);
  });

  it("the genesis prev differs per origin", () => {
    expect(genesisHash("op@a").equals(genesisHash("op@b"))).toBe(false);
    expect(genesisHash("op@a").equals(genesisHash("op@a"))).toBe(true);
  });
});

describe("RFC 8785 canonical JSON", () => {
  // RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
  const numbers: [string, string][] = [
    ["0000000000000000", "0"],
    ["8000000000000000", "0"],
    ["0000000000000001", "5e-324"],
    ["8000000000000001", "-5e-324"],
    ["7fefffffffffffff", "1.7976931348623157e+308"],
    ["ffefffffffffffff", "-1.7976931348623157e+308"],
    ["4340000000000000", "9007199254740992"],
    ["c340000000000000", "-9007199254740992"],
    ["4430000000000000", "295147905179352830000"],
    ["44b52d02c7e14af5", "9.999999999999997e+22"],
    ["44b52d02c7e14af6", "1e+23"],
    ["44b52d02c7e14af7", "1.0000000000000001e+23"],
    ["444b1ae4d6e2ef4e", "999999999999999700000"],
    ["444b1ae4d6e2ef4f", "999999999999999900000"],
    ["444b1ae4d6e2ef50", "1e+21"],
    ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
    ["3eb0c6f7a0b5ed8d", "0.000001"],
    ["41b3de4355555553", "333333333.3333332"],
    ["41b3de4355555554", "333333333.33333325"],
    ["41b3de4355555555", "333333333.3333333"],
    ["41b3de4355555556", "333333333.3333334"],
    ["41b3de4355555557", "333333333.33333343"],
    ["becbf647612f3696", "-0.0000033333333333333333"],
    ["43143ff3c1cb0959", "1424953923781206.2"],
  ];

  it.each(numbers)("number 0x%s", (bits, expected) => {
    expect(canonicalJson(hex(bits).readDoubleBE(0))).toBe(expected);
  });

  it.each([
    ["NaN", "7fffffffffffffff"],
    ["Infinity", "7ff0000000000000"],
  ])("%s is refused", (_name, bits) => {
    expect(() => canonicalJson({ n: hex(bits).readDoubleBE(0) })).toThrow();
  });

  it("the RFC's worked example (§3.2.2, §3.2.3)", () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    expect(canonicalJson(JSON.parse(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it("sorts keys by UTF-16 code units (§3.2.3)", () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    expect(canonicalJson(JSON.parse(input))).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it("refuses a lone surrogate and omits undefined members", () => {
    expect(() => canonicalJson({ s: "\ud800" })).toThrow();
    expect(() => canonicalJson({ "\udc00": 1 })).toThrow();
    expect(canonicalJson({ b: undefined, a: [undefined] })).toBe('{"a":[null]}');
    expect(canonicalJson({ when: new Date(0) })).toBe('{"when":"1970-01-01T00:00:00.000Z"}');
  });

  it("matches the canonicalize package on thousands of generated values", () => {
    // A small deterministic generator (xorshift): nested objects and arrays of numbers across
    // magnitudes and signs, strings with escapes, astral and BMP characters, and unsorted keys.
    let state = 0x9e3779b9;
    const next = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    const pieces = ["a", "Z", "é", "€", "\u0000", "\n", '"', "\\", "😀", "\ufb33", "1", " "];
    const text = () =>
      Array.from(
        { length: Math.floor(next() * 6) },
        () => pieces[Math.floor(next() * pieces.length)],
      ).join("");
    const number = () => {
      const kind = Math.floor(next() * 4);
      if (kind === 0) return Math.floor(next() * 2000) - 1000;
      if (kind === 1) return (next() - 0.5) * 10 ** Math.floor(next() * 60 - 30);
      if (kind === 2) return -0;
      return next() * 1e21;
    };
    const value = (depth: number): unknown => {
      const kind = Math.floor(next() * (depth > 3 ? 4 : 6));
      if (kind === 0) return number();
      if (kind === 1) return text();
      if (kind === 2) return [true, false, null][Math.floor(next() * 3)];
      if (kind === 3) return undefined;
      if (kind === 4) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(next() * 5) }, () => [text(), value(depth + 1)]),
      );
    };
    for (let i = 0; i < 3000; i++) {
      const input = { record: value(0) };
      expect(canonicalJson(input)).toBe(canonicalize(input));
    }
  });
});
