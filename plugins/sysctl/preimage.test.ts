/**
 * sysctl pre-images (preimage.ts): the keys a run modifies with the values the kernel had, as
 * a section that validates and plans nothing against that kernel; a key the run creates (a
 * link's, appearing with the link) is left to the link's undo.
 */
import { describe, expect, it } from "vitest";
import { validate_sysctl } from "../../src/generated/validators.js";
import { diffSysctl } from "./diff.js";
import { normaliseSysctl } from "./index.js";
import { sysctlImage, sysctlScope } from "./preimage.js";
import type { SysctlLive } from "./types.js";

const before: SysctlLive = {
  values: {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.tcp_syncookies": "1",
  },
};

describe("sysctl pre-images", () => {
  it("keep the values a run replaces, and leave out a link's key it creates", () => {
    const run = normaliseSysctl({
      settings: {
        "net.ipv4.ip_forward": 1,
        "net.ipv4.ip_local_port_range": "40000 50000",
        "net.ipv4.tcp_syncookies": 1,
        "net.ipv4.conf.oprl0.forwarding": 1,
      },
    });
    const actions = diffSysctl(run, before);
    expect(actions.map((a) => `${a.kind} ${a.id}`)).toEqual([
      "create net.ipv4.conf.oprl0.forwarding",
      "modify net.ipv4.ip_forward",
      "modify net.ipv4.ip_local_port_range",
    ]);
    const image = sysctlImage(sysctlScope(actions), before);
    expect(image).toEqual({
      section: {
        settings: { "net.ipv4.ip_forward": "0", "net.ipv4.ip_local_port_range": "32768 60999" },
      },
      refused: [],
    });
    expect(validate_sysctl(image.section)).toBe(true);
    expect(diffSysctl(normaliseSysctl(image.section), before)).toEqual([]);
  });

  it("keep nothing when the run modifies nothing", () => {
    const actions = diffSysctl(normaliseSysctl({ settings: { "net.ipv4.ip_forward": 0 } }), before);
    expect(sysctlImage(sysctlScope(actions), before)).toEqual({ section: undefined, refused: [] });
  });
});
