/**
 * Checking a whole file with the real plugins: the schemas and every plugin's check at once.
 * nft's own parser (`op validate`) is in state-check.system.test.ts.
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import { problemLine } from "../src/problems.js";
import { checkState, inspectState } from "../src/state/check.js";
import { registry } from "./registry.js";

const file = (plugins: Record<string, unknown>) => ({ version: 1, plugins });

describe("inspectState", () => {
  it("reports a schema problem and a plugin check's problem of the same section at once", async () => {
    const checked = await inspectState(
      file({
        network: {
          interfaces: [
            {
              name: "opv0",
              type: "linux-bridge",
              mtu: 70000,
              ipv4: { address: ["198.18.0.1/40"] },
            },
          ],
        },
      }),
      registry,
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/0/mtu",
      "/plugins/network/interfaces/0/ipv4/address/0",
    ]);
    expect(checked.problems[1]?.message).toMatch(/invalid IPv4 CIDR "198\.18\.0\.1\/40"/);
  });

  it("runs every plugin's check whatever another section's schema says", async () => {
    const checked = await inspectState(
      file({
        network: { interfaces: [{ name: "opv0", type: "dummy", mtu: "big" }] },
        nftables: {
          tables: [
            { family: "inet", name: "opv_t", chains: [{ name: "c" }, { name: "c" }] },
            { family: "inet", name: "opv_t" },
          ],
        },
        lxc: { containers: [{ id: 1 }, { id: 1 }] },
      }),
      registry,
    );
    const lines = checked.problems.map(problemLine);
    expect(lines).toContain("/plugins/network/interfaces/0/mtu: must be of type integer");
    expect(lines).toContain('/plugins/nftables/tables/0/chains/1/name: chain "c" is given twice');
    expect(lines).toContain("/plugins/nftables/tables/1: table inet/opv_t is given twice");
    expect(lines.some((line) => line.startsWith("/plugins/lxc/containers/1"))).toBe(true);
  });

  it("checks the rest of a section whose array item the schema refused, at the file's paths", async () => {
    const checked = await inspectState(
      file({
        network: {
          interfaces: [
            { name: "opv0" },
            { name: "opv1", type: "dummy", ipv4: { address: ["198.18.0.1/40"] } },
          ],
        },
      }),
      registry,
    );
    expect(checked.problems.map((p) => p.path)).toEqual([
      "/plugins/network/interfaces/0",
      "/plugins/network/interfaces/1/ipv4/address/0",
    ]);
  });

  it("returns a plugin's warnings beside its problems", async () => {
    const checked = await inspectState(
      file({ lxc: { containers: [{ id: 100, properties: { opv_unused: 1 } }] }, x: {} }),
      registry,
    );
    expect(checked.warnings.map((w) => w.path)).toEqual([
      "/plugins/lxc/containers/0/properties/opv_unused",
    ]);
  });
});

describe("checkState", () => {
  it("throws invalid-file naming every problem, after giving the warnings", async () => {
    const warned: string[] = [];
    const error = await checkState(
      file({
        lxc: { containers: [{ id: 100, properties: { opv_unused: 1 } }, { id: 100 }] },
        nftables: { tables: [{ family: "inet", name: "opv_t", chians: [] }] },
      }),
      "f.json",
      registry,
      (warning) => warned.push(problemLine(warning)),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).code).toBe("invalid-file");
    expect((error as OpError).details).toContain(
      '/plugins/nftables/tables/0: unknown field "chians"; did you mean "chains"?',
    );
    expect(warned).toHaveLength(1);
  });
});
