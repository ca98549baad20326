/** What `op validate` says of a sysctl section without reading the host. */
import { describe, expect, it } from "vitest";
import { validate_sysctl } from "../../src/generated/validators.js";
import { checkSysctl } from "./check.js";
import { linkOf, valueText } from "./keys.js";

const check = (settings: Record<string, string | number>) =>
  checkSysctl({ settings }, "/plugins/sysctl");

describe("sysctl keys", () => {
  it("accepts keys under net., per-link keys and dashes", () => {
    expect(
      check({
        "net.ipv4.ip_forward": 1,
        "net.ipv6.conf.all.forwarding": "1",
        "net.ipv4.conf.br-lan_0.rp_filter": 2,
        "net.bridge.bridge-nf-call-iptables": 0,
      }),
    ).toEqual({ problems: [], warnings: [] });
  });

  it.each([
    ["kernel.panic", "only kernel network parameters (keys under `net.`) are managed by op"],
    ["vm.swappiness", "only kernel network parameters (keys under `net.`) are managed by op"],
    ["net", "only kernel network parameters (keys under `net.`) are managed by op"],
    ["network.ip_forward", "only kernel network parameters (keys under `net.`) are managed by op"],
    ["net/ipv4/ip_forward", "a sysctl key is written with dots, not `/`"],
    ["net.ipv4.conf.../../../kernel.core_pattern", "a sysctl key is written with dots, not `/`"],
    ["net.ipv4..ip_forward", "a sysctl key has no empty segment (no `..`, no dot at either end)"],
    ["net.ipv4.ip_forward.", "a sysctl key has no empty segment (no `..`, no dot at either end)"],
    ["net.ipv4.ip_forward=0", 'segment "ip_forward=0" may hold only letters, digits, `_` and `-`'],
    ["net.ipv4.$(reboot)", 'segment "$(reboot)" may hold only letters, digits, `_` and `-`'],
    ["net.ipv4.ip forward", 'segment "ip forward" may hold only letters, digits, `_` and `-`'],
    [
      "net.ipv4.conf.eth0;id.rp_filter",
      'segment "eth0;id" may hold only letters, digits, `_` and `-`',
    ],
    [`net.${"a".repeat(300)}`, "a sysctl key is at most 255 characters"],
  ])("refuses %s with its path", (key, message) => {
    const { problems } = check({ [key]: 1 });
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toBe(message);
    expect(problems[0]?.path).toBe(`/plugins/sysctl/settings/${key.replaceAll("/", "~1")}`);
  });

  it("reports every bad key of the section at once", () => {
    expect(check({ "kernel.a": 1, "net.ok": 1, "vm.b": 2 }).problems.map((p) => p.path)).toEqual([
      "/plugins/sysctl/settings/kernel.a",
      "/plugins/sysctl/settings/vm.b",
    ]);
  });

  it("warns of a number with a leading zero (octal to the kernel), refuses nothing for it", () => {
    const report = check({ "net.ipv4.conf.all.rp_filter": "02", "net.ipv4.ip_forward": "0" });
    expect(report.problems).toEqual([]);
    expect(report.warnings.map((w) => w.path)).toEqual([
      "/plugins/sysctl/settings/net.ipv4.conf.all.rp_filter",
    ]);
  });

  it("names the link of a per-link key only", () => {
    expect(linkOf("net.ipv4.conf.br0.rp_filter")).toBe("br0");
    expect(linkOf("net.ipv6.neigh.v0.base_reachable_time_ms")).toBe("v0");
    expect(linkOf("net.ipv4.conf.all.rp_filter")).toBeUndefined();
    expect(linkOf("net.ipv4.ip_forward")).toBeUndefined();
  });

  it("compares fields, not the spaces and tabs between them", () => {
    expect(valueText(" 32768\t 60999 ")).toBe("32768 60999");
    expect(valueText(1)).toBe("1");
  });
});

describe("the sysctl schema", () => {
  it.each([
    ["a newline in a value", { "net.ipv4.ip_forward": "1\n" }],
    ["a blank value", { "net.ipv4.ip_forward": " " }],
    ["a fraction", { "net.ipv4.ip_forward": 1.5 }],
    ["a list", { "net.ipv4.ip_forward": [1] }],
  ])("refuses %s", (_what, settings) => {
    expect(validate_sysctl({ settings })).toBe(false);
  });

  it("refuses a field it does not know", () => {
    expect(validate_sysctl({ setting: {} })).toBe(false);
    expect(validate_sysctl({ settings: { "net.ipv4.ip_forward": "32768\t60999" } })).toBe(true);
  });
});
