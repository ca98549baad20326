/**
 * Real nft errors, syntax and kernel, placed on the rule that caused them (nft runs in an
 * empty network namespace of its own, made by `unshare -n`, so no host table is touched).
 */
import { describe, expect, it } from "vitest";
import { createRunner } from "../../src/exec.js";
import { definitionScript, locateErrors } from "./script.js";

describe("locateErrors", () => {
  it("places real nft errors (syntax and kernel) on the rule that caused them", async () => {
    const runner = createRunner();
    const broken = (rule: string) =>
      definitionScript([
        {
          family: "inet",
          name: "op_err",
          chains: [{ name: "c", rules: ["accept", rule] }, { name: "d" }],
        },
      ]);
    for (const [rule, message] of [
      ["tcp dport 22 acept", /syntax error/],
      ["jump nowhere", /No such file or directory/],
    ] as const) {
      const generated = broken(rule);
      const result = await runner.run("unshare", ["-n", "nft", "-f", "-"], {
        input: generated.text,
        check: false,
      });
      expect(result.exitCode).not.toBe(0);
      const [problem] = locateErrors(result.stderr, generated);
      expect(problem?.origin).toEqual({ table: "inet/op_err", chain: "c", rule });
      expect(problem?.message).toMatch(message);
    }
  });
});
