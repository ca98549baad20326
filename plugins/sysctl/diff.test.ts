/**
 * The plan from a sysctl section and a host, as data: each fixture folder holds the section a
 * user writes (`section.json`), the values `sysctl net` can report (`live.json`) and the
 * actions op must plan (`actions.json`, written by hand against the folder's README.md). The
 * section goes through the schema, check, normalise, diff and guard as `op plan` runs them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { validate_sysctl } from "../../src/generated/validators.js";
import { defaultSettings } from "../../src/host/settings.js";
import { diffSysctl } from "./diff.js";
import { sysctlPlugin } from "./index.js";
import type { SysctlLive } from "./types.js";

const root = join(import.meta.dirname, "fixtures");
const cases = readdirSync(root).sort();

function read<T>(folder: string, file: string): T {
  return JSON.parse(readFileSync(join(root, folder, file), "utf8")) as T;
}

describe("sysctl plan fixtures", () => {
  it("has fixture cases", () => {
    expect(cases).toEqual(["converged", "drift-and-link-to-come", "taken-out-of-file"]);
  });

  for (const name of cases) {
    it(name, async () => {
      const section = read<unknown>(name, "section.json");
      expect(validate_sysctl(section), JSON.stringify(validate_sysctl.errors)).toBe(true);
      expect(sysctlPlugin.check(section, "/plugins/sysctl", defaultSettings).problems).toEqual([]);
      const live = read<SysctlLive>(name, "live.json");
      const desired = await sysctlPlugin.normalise(section, undefined as never, {
        sections: new Map(),
      });
      const actions = diffSysctl(desired, live);
      expect(sysctlPlugin.guard?.(actions, live, { allowUplink: false })).toEqual([]);
      expect(JSON.parse(JSON.stringify(actions))).toEqual(read(name, "actions.json"));
    });
  }
});

describe("the sysctl guard", () => {
  const live: SysctlLive = {
    values: { "net.ipv4.ip_forward": "0", "net.ipv4.conf.eth0.rp_filter": "1" },
  };
  const plan = (settings: Record<string, string>) =>
    diffSysctl(
      { settings: Object.entries(settings).map(([key, value]) => ({ key, value })) },
      live,
    );

  it("refuses a key the host does not have, with its path and what to do", () => {
    const actions = plan({
      "net.ipv4.ip_forwarding": "1",
      "net.bridge.bridge-nf-call-iptables": "0",
    });
    expect(sysctlPlugin.guard?.(actions, live, { allowUplink: true })).toEqual([
      {
        path: "/plugins/sysctl/settings/net.ipv4.ip_forwarding",
        message: "the kernel of this network namespace has no sysctl net.ipv4.ip_forwarding",
        hint: "`sysctl net` lists the keys there are",
      },
      {
        path: "/plugins/sysctl/settings/net.bridge.bridge-nf-call-iptables",
        message:
          "the kernel of this network namespace has no sysctl net.bridge.bridge-nf-call-iptables",
        hint: "net.bridge.* keys exist once the br_netfilter module is loaded (modprobe br_netfilter)",
      },
    ]);
  });

  it("refuses an unknown key of a link that exists, not the key of a link still to come", () => {
    const actions = plan({
      "net.ipv4.conf.eth0.rp_filtr": "2",
      "net.ipv4.conf.br9.rp_filter": "2",
    });
    const problems = sysctlPlugin.guard?.(actions, live, { allowUplink: false });
    expect(problems?.map((problem) => problem.path)).toEqual([
      "/plugins/sysctl/settings/net.ipv4.conf.eth0.rp_filtr",
    ]);
    expect(actions.find((a) => a.id === "net.ipv4.conf.br9.rp_filter")?.expects).toEqual([
      { plugin: "network", resource: "link", id: "br9" },
    ]);
  });

  it("treats `all` and `default` as the namespace's keys, never as links to come", () => {
    const actions = plan({ "net.ipv4.conf.all.rp_filtr": "1" });
    expect(actions[0]?.expects).toBeUndefined();
    expect(sysctlPlugin.guard?.(actions, live, { allowUplink: false })).toHaveLength(1);
  });
});
