/** Reading `sysctl net`'s output: what the kernel prints, as the query keeps it. */
import { describe, expect, it } from "vitest";
import { parseSysctlOutput } from "./procsys.js";

describe("sysctl output", () => {
  it("keeps values with tabs, empty values and keys whose value holds ' = '", () => {
    const text = [
      "net.ipv4.ip_forward = 1",
      "net.ipv4.ip_local_port_range = 32768\t60999",
      "net.ipv6.conf.all.stable_secret =",
      "net.core.default_qdisc = fq_codel",
      "net.example.pair = a = b",
      "",
    ].join("\n");
    expect(parseSysctlOutput(text)).toEqual({
      "net.ipv4.ip_forward": "1",
      "net.ipv4.ip_local_port_range": "32768\t60999",
      "net.ipv6.conf.all.stable_secret": "",
      "net.core.default_qdisc": "fq_codel",
      "net.example.pair": "a = b",
    });
  });
});
