import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import packageJson from "../../package.json" with { type: "json" };
import { OpError } from "../errors.js";
import { problemLine } from "../problems.js";
import { version } from "../version.js";
import { maxStateFileBytes, readStateFile } from "./load.js";
import { readSchemas, validateState } from "./validate.js";

const dir = mkdtempSync(join(tmpdir(), "op-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const known = [{ name: "network", aliases: ["net"] }, { name: "lxc" }, { name: "nftables" }];

async function failure(work: () => unknown): Promise<OpError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof OpError) return error;
    throw error;
  }
  throw new Error("expected an OpError");
}

describe("readStateFile", () => {
  it("reads JSON and YAML to the same document", async () => {
    const json = await readStateFile(
      file("a.json", '{"version":1,"plugins":{"nftables":{"tables":[]}}}'),
    );
    const yaml = await readStateFile(
      file("a.yaml", "version: 1\nplugins:\n  nftables:\n    tables: []\n"),
    );
    expect(yaml).toEqual(json);
  });

  it("names line and column of malformed JSON", async () => {
    const error = await failure(() =>
      readStateFile(file("bad.json", '{\n  "version": 1,\n  plugins: {}\n}')),
    );
    expect(error.code).toBe("invalid-file");
    expect(error.message).toMatch(/bad\.json:3:3: malformed JSON/);
  });

  it("finds the line and column even where V8 gives no position", async () => {
    for (const [text, where] of [
      ['{\n  "version": 1,\n  "plugins": tru\n}', "3:14"],
      ['{"version": True}', "1:13"],
      ['{"version": 1,\n "plugins": {},\n}', "3:1"],
    ] as const) {
      const error = await failure(() => readStateFile(file("pos.json", text)));
      expect(error.message, text).toMatch(new RegExp(`pos\\.json:${where}: malformed JSON: \\w`));
      expect(error.message).not.toContain("is not valid JSON");
    }
  });

  it("reports a YAML alias bomb as a bad file, not as a bug", async () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${"bcdefghij"[i]}: &${"bcdefghij"[i]} [${Array(10).fill(`*${"abcdefghij"[i]}`).join(", ")}]`,
      );
    const error = await failure(() => readStateFile(file("bomb.yaml", `${bomb.join("\n")}\n`)));
    expect(error.code).toBe("invalid-file");
  });

  it("names line and column of malformed YAML", async () => {
    const error = await failure(() =>
      readStateFile(file("bad.yaml", "version: 1\nplugins:\n  nft: [1,\n  x: }\n")),
    );
    expect(error.message).toMatch(/bad\.yaml:\d+:\d+: malformed YAML/);
  });

  it("rejects duplicate YAML keys instead of keeping the last", async () => {
    const error = await failure(() =>
      readStateFile(file("dup.yaml", "version: 1\nversion: 2\nplugins: {}\n")),
    );
    expect(error.message).toMatch(/dup\.yaml:2:\d+/);
  });

  it("refuses a FIFO and a device without blocking, and says the size limit", async () => {
    const fifo = join(dir, "state.fifo");
    execFileSync("mkfifo", [fifo]);
    // No writer ever opens the FIFO: a blocking open would hang here until the test times out.
    const fromFifo = await failure(() => readStateFile(fifo));
    expect(fromFifo.message).toBe(`${fifo}: the state file is a FIFO, not a regular file`);
    const fromZero = await failure(() => readStateFile("/dev/zero"));
    expect(fromZero.message).toContain("/dev/zero: the state file is a character device");
    const directory = await failure(() => readStateFile(dir));
    expect(directory.message).toContain("is a directory");
    const big = join(dir, "big.json");
    execFileSync("truncate", ["-s", String(maxStateFileBytes + 1), big]);
    const tooBig = await failure(() => readStateFile(big));
    expect(tooBig.message).toContain(`more than the limit of ${maxStateFileBytes}`);
  });

  it("accepts a UTF-8 byte order mark in JSON and YAML, and refuses text that is not UTF-8", async () => {
    const bom = "\uFEFF";
    const expected = { version: 1, plugins: {} };
    expect(await readStateFile(file("bom.json", `${bom}{"version":1,"plugins":{}}`))).toEqual(
      expected,
    );
    expect(await readStateFile(file("bom.yaml", `${bom}version: 1\nplugins: {}\n`))).toEqual(
      expected,
    );
    const latin1 = join(dir, "latin1.json");
    writeFileSync(latin1, Buffer.from('{"version":1,"plugins":{},"x":"\xe9"}', "latin1"));
    expect((await failure(() => readStateFile(latin1))).message).toContain("not UTF-8");
  });

  it("refuses duplicate JSON keys with the path and both places, instead of keeping the last", async () => {
    const error = await failure(() =>
      readStateFile(
        file(
          "dup.json",
          '{"version": 2,\n "version": 1,\n "plugins": {"network": {"interfaces": []},\n  "network": {}}}',
        ),
      ),
    );
    expect(error.code).toBe("invalid-file");
    expect(error.details).toEqual([
      '/version: key "version" is given twice in the same object (at 1:2 and 2:2); JSON would keep only the last',
      '/plugins/network: key "network" is given twice in the same object (at 3:14 and 4:3); JSON would keep only the last',
    ]);
    // The same key in different objects, and a key-like string inside a value, are fine.
    expect(
      await readStateFile(
        file("nodup.json", '{"version":1,"plugins":{"a":{"x":1},"b":{"x":"\\"y\\": 1"}}}'),
      ),
    ).toEqual({ version: 1, plugins: { a: { x: 1 }, b: { x: '"y": 1' } } });
  });

  it("refuses integers a double cannot hold exactly, anywhere, in JSON and YAML", async () => {
    const json = await failure(() =>
      readStateFile(
        file(
          "big.json",
          '{"version":1,"plugins":{"lxc":{"containers":[{"id":9007199254740993}]}}}',
        ),
      ),
    );
    expect(json.details).toEqual([
      "/plugins/lxc/containers/0/id: number out of range: integers must lie within ±9007199254740991",
    ]);
    const yaml = await failure(() =>
      readStateFile(file("big.yaml", "version: 1\nplugins:\n  x: [1, -9007199254740992, .inf]\n")),
    );
    expect(yaml.details.map((d) => d.split(":")[0])).toEqual(["/plugins/x/1", "/plugins/x/2"]);
    expect(
      await readStateFile(file("safe.json", '{"version":9007199254740991,"plugins":{"x":1.5}}')),
    ).toEqual({ version: 9007199254740991, plugins: { x: 1.5 } });
  });

  it("refuses nesting deeper than any state file needs, without overflowing the stack", async () => {
    const deep = `{"version":1,"plugins":{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    const error = await failure(() => readStateFile(file("deep.json", deep)));
    expect(error.details[0]).toMatch(/^\/plugins\/x(\/0)+: nested more than 64 levels deep$/);
  });

  it("says which file is missing", async () => {
    const error = await failure(() => readStateFile(join(dir, "nope.json")));
    expect(error.message).toContain("nope.json: no such file");
  });
});

describe("validateState", () => {
  it("accepts the op-dbus envelope and maps aliases to plugin names", () => {
    const document = validateState({ version: 1, plugins: { net: {}, lxc: {} } }, known, "f");
    expect([...document.sections.keys()]).toEqual(["network", "lxc"]);
  });

  it("reports every envelope problem at once with JSON paths", async () => {
    const error = await failure(() => validateState({ versio: 1 }, known, "f.json"));
    expect(error.details).toEqual(
      expect.arrayContaining([
        '/: missing required field "version"',
        '/: missing required field "plugins"',
        '/: unknown field "versio"; did you mean "version"?',
      ]),
    );
  });

  it("names unknown plugins, listing the known ones, and an unread version", async () => {
    const error = await failure(() =>
      validateState({ version: 2, plugins: { firewall: {}, nftables: {} } }, known, "f"),
    );
    expect(error.details).toContain("/version: op reads version 1; this file says 2");
    expect(error.details.find((d) => d.startsWith("/plugins/firewall"))).toMatch(
      /unknown plugin "firewall"; op knows "network" \(also "net"\), "lxc", "nftables"/,
    );
  });

  it("explains a pattern deep inside a plugin schema with its definition's description", async () => {
    const section = {
      tables: [{ family: "inet", name: "t", chains: [{ name: "c", rules: ["accept; drop"] }] }],
    };
    const error = await failure(() =>
      validateState({ version: 1, plugins: { nftables: section } }, known, "f"),
    );
    expect(error.details).toHaveLength(1);
    expect(error.details[0]).toMatch(
      /^\/plugins\/nftables\/tables\/0\/chains\/0\/rules\/0: "accept; drop" is not in the expected form: One nft rule \(no newline, `;`/,
    );
  });

  it("never explains a field with the description of the whole plugin", async () => {
    const lxc = { containers: [{ id: "100", config: { "raw.lxc\nx": "1" } }] };
    const error = await failure(() => validateState({ version: 1, plugins: { lxc } }, known, "f"));
    // The config field's own description, not the lxc section's ("plugins.lxc: ...").
    expect(error.details).toEqual([
      '/plugins/lxc/containers/0/config: "raw.lxc\\nx" is not in the expected form: Raw Incus config keys (`security.nesting`, `environment.FOO`...).',
    ]);
  });

  it("suggests the closest known field for an unknown one, and none for a far one", async () => {
    const net = {
      interfaces: [
        { name: "opv0", type: "linux-bridge", ipv4: { adress: ["198.18.0.1/24"] } },
        { name: "opv1", type: "dummy", colour: "red" },
      ],
    };
    const error = await failure(() =>
      validateState({ version: 1, plugins: { net, nftabels: {} } }, known, "f"),
    );
    expect(error.details).toEqual([
      '/plugins/net/interfaces/0/ipv4: unknown field "adress"; did you mean "address"?',
      '/plugins/net/interfaces/1: unknown field "colour"',
      '/plugins/nftabels: unknown plugin "nftabels"; did you mean "nftables"? op knows "network" (also "net"), "lxc", "nftables"',
    ]);
  });

  it("explains a value no alternative accepts once, with the field's own description", async () => {
    const lxc = { containers: [{ id: "a b", limits: { cpu: "abc" } }] };
    const error = await failure(() => validateState({ version: 1, plugins: { lxc } }, known, "f"));
    // The id's alternatives are a number, digits, or an Incus name ($ref): the name's rule
    // says what text is allowed. cpu's alternatives have no description of their own: the
    // field's is used, found through the container definition ($ref).
    expect(error.details).toEqual([
      '/plugins/lxc/containers/0/id: "a b" is not in the expected form: An Incus instance name: 1 to 63 letters, digits and `-`, starting with a letter and not ending with `-`.',
      '/plugins/lxc/containers/0/limits/cpu: "abc" is not in the expected form: CPUs: a count (2) or Incus\'s `limits.cpu` syntax (`0-1`, `0,2`).',
    ]);
  });

  it("tells a value that fits one alternative's shape by the error inside it", async () => {
    const net = {
      interfaces: [
        { name: "opv0", type: "dummy", ipv4: { address: [{ ip: "198.18.0.1", prefix: 40 }] } },
      ],
    };
    const error = await failure(() => validateState({ version: 1, plugins: { net } }, known, "f"));
    expect(error.details).toEqual([
      "/plugins/net/interfaces/0/ipv4/address/0/prefix: must be <= 32",
    ]);
  });

  it("refuses one plugin given under two names", async () => {
    const error = await failure(() =>
      validateState({ version: 1, plugins: { network: {}, net: {} } }, known, "f"),
    );
    expect(error.details).toContain('/plugins/net: plugin "network" is already given as "network"');
  });
});

it("keeps the version constant equal to package.json", () => {
  expect(version).toBe(packageJson.version);
});

describe("readSchemas", () => {
  it("gives a check the section without its invalid values when the rest is valid", () => {
    const network = {
      interfaces: [
        { name: "opv0", type: "linux-bridge", mtu: 70000, colour: 1, ipv4: { address: ["x"] } },
      ],
    };
    const reading = readSchemas({ version: 1, plugins: { network } }, known);
    expect(reading.problems.map(problemLine)).toEqual([
      '/plugins/network/interfaces/0: unknown field "colour"',
      "/plugins/network/interfaces/0/mtu: must be <= 65535",
    ]);
    expect(reading.checkable.get("network")?.section).toEqual({
      interfaces: [{ name: "opv0", type: "linux-bridge", ipv4: { address: ["x"] } }],
    });
    // The file's own section is left as it was.
    expect(network.interfaces[0]?.mtu).toBe(70000);
  });

  it("drops an object that lacks a required field when the object itself is optional", () => {
    const network = {
      interfaces: [{ name: "opv1", type: "dummy", macvlan: { mode: "x" } }],
    };
    const lxc = { containers: [{ id: "100", limits: { cpu: "abc" }, properties: { cores: "x" } }] };
    const reading = readSchemas({ version: 1, plugins: { network, lxc } }, known);
    expect(reading.checkable.get("network")?.section).toEqual({
      interfaces: [{ name: "opv1", type: "dummy" }],
    });
    expect(reading.checkable.get("lxc")?.section).toEqual({
      containers: [{ id: "100", limits: {}, properties: {} }],
    });
  });

  it("removes an array item that is invalid or lacks a required field, and maps paths back", () => {
    const reading = readSchemas(
      {
        version: 1,
        plugins: {
          net: {
            interfaces: [
              { name: "opv0" },
              { name: "opv1", type: "dummy" },
              { name: "opv#2", type: "dummy" },
              { name: "opv3", type: "dummy" },
            ],
          },
          nftables: {
            tables: [
              { family: "inet", name: "opv_t", chains: [{ name: "c", rules: [1, "accept"] }] },
            ],
          },
        },
      },
      known,
    );
    const network = reading.checkable.get("network");
    expect(network?.section).toEqual({
      interfaces: [
        { name: "opv1", type: "dummy" },
        { name: "opv3", type: "dummy" },
      ],
    });
    expect(network?.filePath("/plugins/net/interfaces/1/name")).toBe(
      "/plugins/net/interfaces/3/name",
    );
    expect(network?.filePath("/plugins/net/interfaces/0")).toBe("/plugins/net/interfaces/1");
    expect(network?.filePath("/plugins/net")).toBe("/plugins/net");
    const nftables = reading.checkable.get("nftables");
    expect(nftables?.section).toEqual({
      tables: [{ family: "inet", name: "opv_t", chains: [{ name: "c", rules: ["accept"] }] }],
    });
    expect(nftables?.filePath("/plugins/nftables/tables/0/chains/0/rules/0")).toBe(
      "/plugins/nftables/tables/0/chains/0/rules/1",
    );
  });

  it("reads the sections of a file whose envelope has a problem elsewhere", () => {
    const reading = readSchemas({ version: 1, plugins: { nftables: { tables: [] } }, x: 1 }, known);
    expect(reading.problems.map(problemLine)).toEqual(['/: unknown field "x"']);
    expect(reading.checkable.get("nftables")?.section).toEqual({ tables: [] });
  });
});
