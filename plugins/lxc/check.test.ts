/**
 * `op validate`'s own checks of plugins.lxc (check.ts): what prepare would refuse at plan time
 * that the file alone shows, and the op-dbus properties op ignores, as warnings.
 */
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/host/settings.js";
import { problemLine } from "../../src/plugin.js";
import { checkLxc } from "./check.js";
import { lxcPlugin } from "./index.js";

const base = "/plugins/lxc";
const problems = (section: object) => checkLxc(section, base);

describe("checkLxc", () => {
  it("accepts a clean section and says nothing", () => {
    const warnings: string[] = [];
    expect(
      checkLxc(
        { containers: [{ id: 100, bridge: "br0", properties: { memory: 512 } }] },
        base,
        (m) => warnings.push(m),
      ),
    ).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it("warns about properties op ignores (ip, ip6, gw), with their paths, without refusing", () => {
    const warnings: string[] = [];
    const section = {
      containers: [{ id: 1, properties: { ip: "198.18.0.2/24", gw: "198.18.0.1", ip6: "auto" } }],
    };
    expect(checkLxc(section, base, (m) => warnings.push(m))).toEqual([]);
    expect(warnings).toEqual([
      "/plugins/lxc/containers/0/properties/ip: not used by op (ignored)",
      "/plugins/lxc/containers/0/properties/gw: not used by op (ignored)",
      "/plugins/lxc/containers/0/properties/ip6: not used by op (ignored)",
    ]);
  });

  it("refuses ids, names and veths given twice", () => {
    expect(
      problems({
        containers: [
          { id: 1, bridge: "br0", veth: "same0" },
          { id: "1" },
          { id: "web" },
          { id: "x", name: "web" },
          { id: 2, bridge: "br0", veth: "same0" },
        ],
      }),
    ).toEqual([
      '/plugins/lxc/containers/1/id: id "1" is also used by /plugins/lxc/containers/0/id',
      '/plugins/lxc/containers/1/id: name "ct1" is also used by /plugins/lxc/containers/0/id',
      '/plugins/lxc/containers/3/name: name "web" is also used by /plugins/lxc/containers/2/id',
      '/plugins/lxc/containers/4/veth: veth "same0" is also used by /plugins/lxc/containers/0/veth',
    ]);
  });

  it("refuses a derived veth name the kernel would refuse (web-frontend-01 → viweb-frontend-01)", () => {
    expect(problems({ containers: [{ id: "web-frontend-01", bridge: "br0" }] })).toEqual([
      '/plugins/lxc/containers/0/id: veth "viweb-frontend-01" is not a valid interface name (at most 15 characters, no /, : or whitespace); set "veth"',
    ]);
  });

  it("refuses op-dbus values that disagree with the fields, naming both", () => {
    const lines = problems({
      containers: [
        {
          id: 1,
          limits: { cpu: 2 },
          properties: { cores: 4, memory: 512 },
          config: { "limits.memory": "1GiB" },
        },
      ],
    });
    expect(lines).toEqual([
      '/plugins/lxc/containers/0: limits.cpu is given twice with different values: /plugins/lxc/containers/0/limits/cpu = "2", /plugins/lxc/containers/0/properties/cores = "4"',
      '/plugins/lxc/containers/0: limits.memory is given twice with different values: /plugins/lxc/containers/0/properties/memory = "512MiB", /plugins/lxc/containers/0/config/limits.memory = "1GiB"',
    ]);
  });

  it("refuses a numeric id beyond the safe integers (it would silently become another id)", () => {
    expect(problems({ containers: [{ id: 9007199254740992 }] })).toEqual([
      "/plugins/lxc/containers/0/id: id 9007199254740992 is not a safe integer (at most 9007199254740991): it cannot be read exactly; write it as a string or use a smaller id",
    ]);
    expect(problems({ containers: [{ id: Number.MAX_SAFE_INTEGER }] })).toEqual([]);
  });

  it("refuses a read-write mount of a directory the host needs unless allow_host_path says so", () => {
    const mount = (source: string, extra: object = {}) => ({
      containers: [{ id: 1, mounts: [{ source, path: "/host", ...extra }] }],
    });
    for (const source of [
      "/",
      "/etc",
      "/etc/ssh",
      "/root",
      "/var",
      "/var/lib/incus",
      "/var/lib/op",
      "/usr/../etc",
    ]) {
      const lines = problems(mount(source));
      expect(lines, source).toHaveLength(1);
      expect(lines[0], source).toMatch(
        /^\/plugins\/lxc\/containers\/0\/mounts\/0\/source: mounting \/.* read-write gives the container a directory the host needs \(it (is|holds|is inside) \/.*\); add "readonly": true, or "allow_host_path": true/,
      );
    }
    expect(problems(mount("/etc", { readonly: true }))).toEqual([]);
    expect(problems(mount("/etc", { allow_host_path: true }))).toEqual([]);
    expect(problems(mount("/srv/web-data"))).toEqual([]);
    expect(problems(mount("/var/lib/op-data"))).toEqual([]);
  });

  it("refuses preserve: false on a system directory, a parent of one, or through ..", () => {
    const drop = (source: string) => ({
      containers: [{ id: 1, ensure: "absent", mounts: [{ source, path: "/d", preserve: false }] }],
    });
    for (const source of [
      "/",
      "/tmp/..",
      "/home",
      "/var/lib",
      "/srv",
      "/etc/app",
      "/usr/local",
      "/var/lib/incus/x",
    ]) {
      const lines = problems(drop(source));
      expect(lines, source).toHaveLength(1);
      expect(lines[0], source).toMatch(
        /^\/plugins\/lxc\/containers\/0\/mounts\/0\/preserve: op will not remove \/.* is a system directory .*; keep preserve true$/,
      );
    }
    expect(problems(drop("/srv/scratch"))).toEqual([]);
    expect(problems(drop("/tmp/op-scratch"))).toEqual([]);
  });
});

describe("lxcPlugin.check: op's own paths from the settings", () => {
  const mount = (source: string) => ({
    containers: [{ id: 1, mounts: [{ source, path: "/m" }] }],
  });

  it("protects a moved ledger and the files of the key and the lock, not their shared directories", () => {
    const settings = loadSettings({
      OP_LEDGER: "/srv/opdata/ledger",
      OP_LEDGER_KEY: "/tmp/opkeys/ledger.key",
      OP_LOCK: "/tmp/op.lock",
    });
    const check = (source: string) =>
      lxcPlugin.check(mount(source), base, settings).problems.map(problemLine);
    expect(check("/srv/opdata/ledger")[0]).toContain("(it is /srv/opdata/ledger)");
    expect(check("/srv/opdata")[0]).toContain("(it holds /srv/opdata/ledger)");
    expect(check("/tmp/opkeys")[0]).toContain("(it holds /tmp/opkeys/ledger.key)");
    expect(check("/tmp")[0]).toContain("(it holds /tmp/op");
    expect(check("/tmp/app-data")).toEqual([]);
    expect(check("/srv/opdata-other")).toEqual([]);
  });
});
