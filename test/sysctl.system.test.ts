/**
 * The sysctl plugin on a real kernel, through the real engine, inside a network namespace each
 * test creates: net.* sysctls belong to the namespace, so nothing of the host changes (the
 * test checks that too). Apply, read back, drift by hand, converge; a key the kernel does not
 * have is refused at plan time; a link's key waits for the network plugin to make the link.
 */
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { registry } from "../plugins/registry.js";
import { sysctlPlugin } from "../plugins/sysctl/index.js";
import { planState } from "../src/engine/reconcile.js";
import { createRunner } from "../src/exec.js";
import type { Ctx } from "../src/plugin.js";
import { validateState } from "../src/state/validate.js";
import { applyAndVerify, planSection, quietCtx } from "./support/engine.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let netns: TestNetns;
let ctx: Ctx;

/** The host's own value, read by this process (which is in the host's namespace). */
const hostValue = (key: string) =>
  readFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8").trim();

const inNetns = (key: string) => netns.run("sysctl", ["-n", key]).trim().split(/\s+/).join(" ");

beforeEach(() => {
  netns = createNetns("sysctl");
  ctx = quietCtx({ exec: createRunner({ netns: netns.name }) });
});

afterEach(() => {
  netns.remove();
});

const keys = {
  forward: "net.ipv4.ip_forward",
  forward6: "net.ipv6.conf.all.forwarding",
  ports: "net.ipv4.ip_local_port_range",
};

describe("sysctl plugin in a network namespace", () => {
  it("applies, reads back, shows drift made by hand and converges again; the host is untouched", async () => {
    const hostBefore = Object.values(keys).map(hostValue);
    const before = { forward: inNetns(keys.forward), ports: inNetns(keys.ports) };
    // Values the namespace does not have yet, whatever its defaults are.
    const forward = before.forward === "1" ? "0" : "1";
    const ports = before.ports === "40000 50000" ? "40001 50000" : "40000 50000";
    const section = { settings: { [keys.forward]: Number(forward), [keys.ports]: ports } };

    const first = await applyAndVerify(await planSection(sysctlPlugin, section, ctx), ctx);
    expect(first.planned.actions.map((a) => [a.kind, a.id])).toEqual([
      ["modify", keys.forward],
      ["modify", keys.ports],
    ]);
    expect(first.report.failed).toBe(0);
    expect(first.remaining).toEqual([]);
    expect(inNetns(keys.forward)).toBe(forward);
    expect(inNetns(keys.ports)).toBe(ports);
    // The ledger holds the value op replaced.
    const intent = first.records.find((r) => r.status === "intent" && r.target === keys.forward);
    expect(intent?.changes).toEqual([{ path: "value", before: before.forward, after: forward }]);

    expect((await planSection(sysctlPlugin, section, ctx)).actions).toEqual([]);

    netns.run("sysctl", ["-q", "-w", `${keys.forward}=${before.forward}`]);
    const drift = await planSection(sysctlPlugin, section, ctx);
    expect(drift.actions).toMatchObject([
      {
        kind: "modify",
        id: keys.forward,
        before: { value: before.forward },
        after: { value: forward },
      },
    ]);
    const again = await applyAndVerify(drift, ctx);
    expect(again.remaining).toEqual([]);
    expect(inNetns(keys.forward)).toBe(forward);

    expect(Object.values(keys).map(hostValue)).toEqual(hostBefore);
  });

  it("leaves a key taken out of the file as it is", async () => {
    const forward6 = inNetns(keys.forward6) === "1" ? "0" : "1";
    await applyAndVerify(
      await planSection(sysctlPlugin, { settings: { [keys.forward6]: forward6 } }, ctx),
      ctx,
    );
    const later = await planSection(sysctlPlugin, { settings: {} }, ctx);
    expect(later.actions).toEqual([]);
    expect(inNetns(keys.forward6)).toBe(forward6);
  });

  it("refuses at plan time a key the kernel does not have, naming its path, and changes nothing", async () => {
    const forward = inNetns(keys.forward);
    const section = {
      settings: { [keys.forward]: forward === "1" ? 0 : 1, "net.ipv4.ip_forwarding": 1 },
    };
    await expect(planSection(sysctlPlugin, section, ctx)).rejects.toThrow(
      "/plugins/sysctl/settings/net.ipv4.ip_forwarding: the kernel of this network namespace has no sysctl net.ipv4.ip_forwarding",
    );
    expect(inNetns(keys.forward)).toBe(forward);
  });

  it("sets a link's key after the network plugin has made the link, in the same run", async () => {
    const file = {
      version: 1,
      plugins: {
        network: { interfaces: [{ name: "opsy0", type: "linux-bridge" }] },
        sysctl: { settings: { "net.ipv4.conf.opsy0.rp_filter": 2 } },
      },
    };
    const document = validateState(file, registry.manifests, "test.json");
    const planned = await planState(document, await registry.load(["network", "sysctl"]), ctx);
    expect(planned.actions.map((a) => [a.plugin, a.kind, a.id])).toEqual([
      ["network", "create", "opsy0"],
      ["sysctl", "create", "net.ipv4.conf.opsy0.rp_filter"],
    ]);
    const run = await applyAndVerify(planned, ctx);
    expect(run.report.failed).toBe(0);
    expect(run.remaining).toEqual([]);
    expect(inNetns("net.ipv4.conf.opsy0.rp_filter")).toBe("2");
  });
});
