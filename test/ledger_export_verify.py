#!/usr/bin/env python3
"""An independent check of `op ledger export` output, written from docs/ledger.md alone.

Usage: python3 ledger_export_verify.py EXPORT.jsonl
Prints "OK <records> records, <checkpoints> checkpoints" and exits 0, or "BAD: <why>" and
exits 1. Python's standard library has no Ed25519, so checkpoint signatures are not checked
here (docs/ledger.md shows how to check them with openssl); everything else is.
"""
import hashlib
import json
import math
import sys


def canonical(value):
    """RFC 8785 canonical JSON."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return canonical_number(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
        return "{" + ",".join(canonical_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise ValueError(f"no JSON form: {value!r}")


def canonical_string(text):
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def canonical_number(number):
    """ECMAScript Number::toString, as RFC 8785 requires."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError("NaN and Infinity have no JSON form")
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    digits, exponent = shortest_digits(abs(number))
    sign = "-" if number < 0 else ""
    n = exponent + 1  # position of the decimal point after the first digit, as in the spec
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return sign + mantissa + "e" + ("+" if n - 1 >= 0 else "-") + str(abs(n - 1))


def shortest_digits(number):
    """The shortest round-tripping digits of a positive float and its decimal exponent."""
    text = f"{number:.17e}"
    for precision in range(1, 18):
        candidate = f"{number:.{precision - 1}e}"
        if float(candidate) == number:
            text = candidate
            break
    mantissa, exponent = text.split("e")
    return mantissa.replace(".", "").rstrip("0") or "0", int(exponent)


def sha256(data):
    return hashlib.sha256(data).digest()


def checkpoint_fields(text):
    lines = text.rstrip("\n").split("\n")
    if lines[0] != "op ledger checkpoint":
        raise ValueError("not a checkpoint")
    return dict(line.split(" ", 1) for line in lines[1:])


def verify(lines):
    header = json.loads(lines[0])
    if header.get("export") != "op ledger":
        return "the first line is not an op ledger export header"
    origin = header["origin"]
    genesis = sha256(("op ledger genesis\n" + origin).encode("utf-8"))
    if genesis.hex() != header["genesis"]:
        return "the header's genesis is not SHA-256('op ledger genesis\\n' || origin)"
    linked_from = header["linkedFrom"]
    hashes = {0: genesis}
    link = genesis  # what the next record's prev must be
    size = 0
    checkpoints = 0
    for number, line in enumerate(lines[1:], start=2):
        entry = json.loads(line)
        if "checkpoint" in entry:
            text = entry["checkpoint"]
            fields = checkpoint_fields(text)
            at = entry["size"]
            if int(fields["size"]) != at or at != size:
                return f"line {number}: a checkpoint at size {at} after record {size}"
            if fields["origin"] != origin:
                return f"line {number}: the checkpoint is for origin {fields['origin']}"
            if fields["root"] != hashes[at].hex():
                return f"line {number}: the checkpoint's root is not the hash of record {at}"
            if linked_from is not None and at >= linked_from:
                link = sha256(b"\x01" + hashes[at] + sha256(text.encode("utf-8")))
            checkpoints += 1
            continue
        prev = bytes.fromhex(entry.pop("prev"))
        claimed = entry.pop("hash")
        size += 1
        if entry.get("seq") != size:
            return f"line {number}: record {entry.get('seq')} where record {size} belongs"
        if prev != link:
            return f"record {size}: prev does not link to record {size - 1}"
        digest = sha256(b"\x00" + prev + canonical(entry).encode("utf-8"))
        if digest.hex() != claimed:
            return f"record {size}: hash does not match its content"
        hashes[size] = digest
        link = digest
    print(f"OK {size} records, {checkpoints} checkpoints")
    return None


def main():
    with open(sys.argv[1], encoding="utf-8") as export:
        lines = [line for line in export.read().split("\n") if line]
    problem = verify(lines)
    if problem is not None:
        print(f"BAD: {problem}")
        sys.exit(1)


if __name__ == "__main__":
    main()
