/** The pure parts of op file: NAME:/PATH as typed, and a pulled symlink's target. */
import { describe, expect, it } from "vitest";
import { splitInstancePath } from "../../../src/cli/file.js";
import { OpError } from "../../../src/errors.js";
import { linkTarget } from "./file-pull.js";
import { checkInstancePath } from "./files.js";

function refusal(work: () => unknown): OpError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(OpError);
    return error as OpError;
  }
  throw new Error("not refused");
}

describe("NAME:/PATH", () => {
  it("splits at the first colon: a path may hold more", () => {
    expect(splitInstancePath("ct1:/a:b", "x")).toEqual({ instance: "ct1", path: "/a:b" });
    expect(splitInstancePath("p1/ct1:/", "x")).toEqual({ instance: "p1/ct1", path: "/" });
    expect(refusal(() => splitInstancePath("/root/file", "the destination")).message).toBe(
      '"/root/file" is not NAME:/PATH (the destination)',
    );
  });

  it("takes an absolute path, tidied, keeping a trailing slash", () => {
    expect(checkInstancePath({ instance: "p1/ct1", path: "/root//a/../b/" })).toEqual({
      name: { project: "p1", name: "ct1" },
      path: "/root/b/",
      typed: "p1/ct1:/root//a/../b/",
    });
    // Incus resolves a path inside the instance's root: `..` cannot climb out of it.
    expect(checkInstancePath({ instance: "ct1", path: "/../../etc" }).path).toBe("/etc");
  });

  it("refuses an empty, relative or NUL-holding path, and a bad name", () => {
    const cases: [string, string, string][] = [
      ["ct1", "", '"ct1:" names no path in the instance'],
      ["ct1", "root/x", '"ct1:root/x": the path in the instance is not absolute'],
      ["ct1", "/a\0b", "a path cannot hold a NUL character"],
      ["ct 1", "/x", "is not an Incus instance name"],
    ];
    for (const [instance, path, message] of cases) {
      const error = refusal(() => checkInstancePath({ instance, path }));
      expect(error.code).toBe("usage");
      expect(error.message).toContain(message);
    }
  });
});

describe("a pulled symlink's target", () => {
  it("is made relative when it points inside the pulled tree, and kept absolute otherwise", () => {
    expect(linkTarget("/root/tree/a", "/root/tree/link", "/root/tree")).toBe("a");
    expect(linkTarget("/root/tree/sub/a", "/root/tree/x/link", "/root/tree")).toBe("../sub/a");
    expect(linkTarget("/root/tree", "/root/tree/self", "/root/tree")).toBe(".");
    expect(linkTarget("/etc/passwd", "/root/tree/link", "/root/tree")).toBe("/etc/passwd");
    // A sibling whose name only begins like the tree's is outside it.
    expect(linkTarget("/root/treehouse", "/root/tree/link", "/root/tree")).toBe("/root/treehouse");
  });
});
