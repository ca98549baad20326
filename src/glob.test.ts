import { describe, expect, it } from "vitest";
import { compileGlob, GlobError } from "./glob.js";

const matches = (glob: string, name: string) => compileGlob(glob).matches(name);

describe("globs of ignore lists", () => {
  it("matches names, *, ? and sets as the shell does", () => {
    expect(matches("docker0", "docker0")).toBe(true);
    expect(matches("docker0", "docker01")).toBe(false);
    expect(matches("veth*", "veth")).toBe(true);
    expect(matches("veth*", "veth1a2b")).toBe(true);
    expect(matches("veth*", "xveth1")).toBe(false);
    expect(matches("*0", "docker0")).toBe(true);
    expect(matches("*0", "docker1")).toBe(false);
    expect(matches("br?", "br1")).toBe(true);
    expect(matches("br?", "br")).toBe(false);
    expect(matches("br?", "br12")).toBe(false);
    expect(matches("eth[0-3]", "eth2")).toBe(true);
    expect(matches("eth[0-3]", "eth4")).toBe(false);
    expect(matches("eth[!0-3]", "eth4")).toBe(true);
    expect(matches("eth[^0-3]", "eth0")).toBe(false);
    expect(matches("a[]b]c", "a]c")).toBe(true);
    expect(matches("a[x-]", "a-")).toBe(true);
    expect(matches("inet/*", "inet/incus")).toBe(true);
    expect(matches("inet/*", "ip/incus")).toBe(false);
  });

  it("takes \\ as the next character as it is, and nothing of the shell as special", () => {
    expect(matches("a\\*", "a*")).toBe(true);
    expect(matches("a\\*", "ab")).toBe(false);
    expect(matches("$(reboot)", "$(reboot)")).toBe(true);
    expect(matches("$(reboot)", "x")).toBe(false);
    expect(matches("a;b|c&d`e'f\"g", "a;b|c&d`e'f\"g")).toBe(true);
    expect(matches("{a,b}", "a")).toBe(false);
    expect(matches("{a,b}", "{a,b}")).toBe(true);
  });

  it("reads ** as *", () => {
    expect(matches("**", "anything/at/all")).toBe(true);
    expect(matches("a**b", "ab")).toBe(true);
    expect(matches("a**b", "axxb")).toBe(true);
    expect(matches("a**b", "axxc")).toBe(false);
  });

  it("refuses what it cannot read, saying what", () => {
    expect(() => compileGlob("[")).toThrow(GlobError);
    expect(() => compileGlob("veth[0-9")).toThrow(/never closed/);
    expect(() => compileGlob("a[]")).toThrow(/never closed/);
    expect(() => compileGlob("a\\")).toThrow(/lone \\/);
    expect(() => compileGlob("[z-a]")).toThrow(/end comes first/);
  });

  it("stays linear on globs built to backtrack, and on long ones", () => {
    // A backtracking matcher takes exponential time here; this one at most glob × name steps.
    const glob = `${"*a".repeat(40)}b`;
    expect(matches(glob, "a".repeat(5000))).toBe(false);
    expect(matches(glob, `${"a".repeat(5000)}b`)).toBe(true);
    const long = "x".repeat(100_000);
    expect(matches(long, long)).toBe(true);
    expect(matches(`${long}?`, long)).toBe(false);
    expect(matches("?".repeat(3), "\u{1F600}ab")).toBe(true);
  });
});
