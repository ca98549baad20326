/**
 * The editor schema: what `op schema` prints (the envelope with every plugin schema bundled),
 * compiled by ajv here, must accept every example state file of the README and state/ and every
 * plugin fixture's section, and agree with op's own schema check on the hostile corpus
 * (refusing what it refuses for its form, accepting what only op's own checks refuse). The unbundled schemas, joined by their
 * absolute $ids, must say the same.
 */
import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { registry } from "../plugins/registry.js";
import { bundledSchema } from "../src/generated/bundle.js";
import { readSchemas } from "../src/state/validate.js";
import { loadCases } from "./hostile/corpus.js";
import { repoRoot } from "./support/cli.js";

const options = { allErrors: true, strict: true, allowUnionTypes: true } as const;
const bundled = new Ajv(options).compile(bundledSchema);
const schemaFiles = readdirSync(join(repoRoot, "schemas")).filter((f) =>
  f.endsWith(".schema.json"),
);
const byIds = (() => {
  const ajv = new Ajv(options);
  for (const file of schemaFiles)
    ajv.addSchema(JSON.parse(readFileSync(join(repoRoot, "schemas", file), "utf8")));
  return ajv.getSchema("https://op.invalid/schemas/state.schema.json") as ValidateFunction;
})();

/** The README's JSON examples as state files: a whole file, or sections wrapped in one. */
function readmeExamples(): { name: string; file: unknown }[] {
  const text = readFileSync(join(repoRoot, "README.md"), "utf8");
  const names = new Set(registry.manifests.flatMap((m) => [m.name, ...(m.aliases ?? [])]));
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].flatMap((match, i) => {
    const block = match[1] as string;
    for (const candidate of [block, `{${block}}`]) {
      let value: unknown;
      try {
        value = JSON.parse(candidate);
      } catch {
        continue;
      }
      const keys = Object.keys(value as object);
      if (keys.includes("plugins")) return [{ name: `README block ${i}`, file: value }];
      if (keys.every((key) => names.has(key)))
        return [{ name: `README block ${i}`, file: { version: 1, plugins: value } }];
    }
    return [];
  });
}

describe("the combined schema", () => {
  it("is self-contained: every $ref points inside the document", () => {
    const refs = JSON.stringify(bundledSchema).match(/"\$ref":"[^"]*"/g) ?? [];
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter((ref) => !ref.startsWith('"$ref":"#/'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(repoRoot, "schemas", "op.bundle.json"), "utf8"))).toEqual(
      bundledSchema,
    );
  });

  it("names every plugin and alias op knows, and nothing else, under plugins", () => {
    const plugins = (bundledSchema as { properties: { plugins: { properties: object } } })
      .properties.plugins.properties;
    const known = registry.manifests.flatMap((m) => [m.name, ...(m.aliases ?? [])]);
    expect(Object.keys(plugins).sort()).toEqual(known.sort());
  });

  it("accepts every example of the README and state/, with a $schema key", () => {
    const examples = [
      ...readmeExamples(),
      ...readdirSync(join(repoRoot, "state"))
        .filter((f) => f.endsWith(".json"))
        .map((f) => ({
          name: `state/${f}`,
          file: JSON.parse(readFileSync(join(repoRoot, "state", f), "utf8")),
        })),
    ];
    // The README's sections (nftables, network, lxc x3, sysctl, ignore), its full file, and state/.
    expect(examples.length).toBeGreaterThanOrEqual(9);
    for (const { name, file } of examples) {
      for (const validate of [bundled, byIds]) {
        expect(validate(file), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
        const withSchema = { $schema: "./op.schema.json", ...(file as object) };
        expect(validate(withSchema), name).toBe(true);
      }
    }
  });

  it("agrees with op's own schema check on every plugin fixture's section", () => {
    const fixtures = readdirSync(join(repoRoot, "plugins"), { recursive: true, encoding: "utf8" })
      .filter((path) => /\/fixtures\/.+\/(section|lxc)\.json$/.test(path))
      .map((path) => {
        const plugin = path.endsWith("lxc.json") ? "lxc" : (path.split("/")[0] as string);
        const section: unknown = JSON.parse(readFileSync(join(repoRoot, "plugins", path), "utf8"));
        return { path, file: { version: 1, plugins: { [plugin]: section } } };
      });
    // network, nftables and sysctl sections, and the lxc section of network's foreign-ports.
    expect(fixtures.length).toBeGreaterThanOrEqual(35);
    for (const { path, file } of fixtures) {
      const own = readSchemas(file, registry.manifests).problems;
      expect(own, path).toEqual([]);
      expect(bundled(file), `${path}: ${JSON.stringify(bundled.errors)}`).toBe(true);
      expect(byIds(file), path).toBe(true);
    }
  });

  it("refuses a known-bad file where op does, at the same path", () => {
    const bad = {
      version: 1,
      plugins: { network: { interfaces: [{ name: "opig0", type: "dummy", mtu: 70000 }] } },
    };
    expect(bundled(bad)).toBe(false);
    expect(bundled.errors?.map((error) => error.instancePath)).toContain(
      "/plugins/network/interfaces/0/mtu",
    );
    expect(bundled({ version: 1, plugins: { nftabels: {} } })).toBe(false);
    expect(bundled({ version: 1, plugins: {}, $schema: 7 })).toBe(false);
    expect(bundled({ version: 1, plugins: { lxc: { ignore: [""] } } })).toBe(false);
  });

  it("agrees with op's own schema check on every file of the hostile corpus", () => {
    const compared = loadCases().flatMap((hostile) => {
      const text = readFileSync(hostile.file, "utf8").replace(/^\uFEFF/, "");
      let file: unknown;
      try {
        file = extname(hostile.file) === ".json" ? JSON.parse(text) : parseYaml(text);
      } catch {
        return []; // not JSON or YAML at all: no schema to compare
      }
      // op refuses version 2 by its own check; the schema only says it is an integer.
      const own = readSchemas(file, registry.manifests).problems.filter(
        (p) => !(p.path === "/version" && /op reads version/.test(p.message)),
      );
      return [{ name: `${hostile.area}/${hostile.name}`, op: own.length === 0, file }];
    });
    expect(compared.length).toBeGreaterThan(300);
    // Both verdicts occur: the corpus has form errors and errors only op's checks find.
    expect(new Set(compared.map((c) => c.op))).toEqual(new Set([true, false]));
    for (const { name, op, file } of compared) {
      expect(bundled(file), name).toBe(op);
      expect(byIds(file), name).toBe(op);
    }
  });
});
