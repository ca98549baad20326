/**
 * Editor support through the built op: `op schema` prints the bundled schema, and a state file
 * that names its schema (`"$schema"` in JSON, a key and the YAML language server's modeline in
 * YAML) is valid for `op validate`, whatever the text; any other type there is refused.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, repoRoot } from "./support/cli.js";

let sandbox: CliSandbox;
beforeAll(() => {
  sandbox = createCliSandbox();
});
afterAll(() => sandbox.cleanup());

const section = '{"interfaces": [{"name": "opigs0", "type": "linux-bridge"}]}';

function validate(name: string, text: string) {
  const path = join(sandbox.dir, name);
  writeFileSync(path, text);
  return sandbox.op(["validate", path]);
}

describe("editor support", () => {
  it("op schema prints the bundled schema, the same as schemas/op.bundle.json", () => {
    const result = sandbox.op(["schema"]);
    expect(result.status, result.stderr).toBe(0);
    const printed = JSON.parse(result.stdout) as { $id: string; definitions: object };
    expect(printed).toEqual(
      JSON.parse(readFileSync(join(repoRoot, "schemas", "op.bundle.json"), "utf8")),
    );
    expect(printed.$id).toBe("https://op.invalid/schemas/state.schema.json");
    expect(Object.keys(printed.definitions).sort()).toEqual([
      "lxc",
      "network",
      "nftables",
      "sysctl",
    ]);
  });

  it("accepts a $schema key in JSON", () => {
    const result = validate(
      "editor.json",
      `{"$schema": "./op.schema.json", "version": 1, "plugins": {"network": ${section}}}`,
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("is valid (plugins: network)");
  });

  it("accepts a $schema key and the language server's modeline in YAML", () => {
    const yaml = [
      "# yaml-language-server: $schema=../schemas/op.bundle.json",
      "$schema: https://op.invalid/schemas/state.schema.json",
      "version: 1",
      "plugins:",
      `  network: ${section}`,
      "",
    ].join("\n");
    const result = validate("editor.yaml", yaml);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("is valid (plugins: network)");
  });

  it("refuses a $schema that is not text, with its path", () => {
    const result = validate("bad.json", '{"$schema": ["x"], "version": 1, "plugins": {}}');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("/$schema: must be of type string");
  });
});
