/**
 * The lxc plugin through the built `op` binary, as a user runs it: the op-dbus example file
 * applied unchanged, `op query --plugin lxc` (table and JSON), exit codes and ledger records of
 * a failed action, and the messages of a bad file or a missing daemon.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import {
  createOvsBridge,
  incusBridge,
  instance,
  ovsBridgeExists,
  ovsPorts,
  removeBridge,
  removeContainers,
  testId,
  testImage,
  uid,
} from "./support/lxc.js";

let sandbox: CliSandbox;
const containers: string[] = [];
const env = { OP_DEFAULT_IMAGE: testImage };

beforeAll(() => {
  sandbox = createCliSandbox();
});
afterAll(async () => {
  await removeContainers(containers);
  sandbox.cleanup();
});

function file(name: string, document: unknown): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, typeof document === "string" ? document : JSON.stringify(document));
  return path;
}

const op = (args: string[], extra: Record<string, string> = {}) =>
  sandbox.op(args, { env: { ...env, ...extra } });

describe("the op-dbus example file", () => {
  // Exactly the op-dbus notes' file; it needs the OVS bridge ovsbr0, made here unless present.
  const example =
    '{"version":1,"plugins":{"lxc":{"containers":[{"id":"100","veth":"vi100","bridge":"ovsbr0","running":true,"properties":{"network_type":"bridge"}}]}}}';
  let madeBridge = false;

  beforeAll(async () => {
    // The file names ct100 itself: a ct100 that was there before is someone else's, and the
    // test neither adopts nor deletes it.
    if ((await instance("ct100")) !== undefined) {
      throw new Error(
        "a container ct100 already exists on this host: this test creates and deletes its own ct100, so it will not run; remove it (incus delete -f ct100) if it is a leftover of an earlier run",
      );
    }
    madeBridge = !ovsBridgeExists("ovsbr0");
    if (madeBridge) createOvsBridge("ovsbr0");
  });
  afterAll(async () => {
    if (madeBridge) removeBridge("ovsbr0");
  });

  it("applies unchanged: ct100 runs with vi100 in ovsbr0, and a second apply changes nothing", async () => {
    const path = file("op-dbus.json", example);
    // From here on ct100 is the test's own (the check above found none), removed after.
    containers.push("ct100");
    const first = op(["apply", path]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toContain("+ create lxc container ct100");
    expect(first.stdout).toContain("verified: the host matches the file");
    expect((await instance("ct100"))?.config["user.op.id"]).toBe("100");
    expect(ovsPorts("ovsbr0")).toContain("vi100");

    const second = op(["apply", path]);
    expect(second.status).toBe(0);
    expect(second.stdout).toBe("No changes: the host matches the file.\n");
  });
});

describe("op query --plugin lxc", () => {
  const id = testId();
  const name = `optest-${uid()}`;
  containers.push(name);

  it("lists name, id, status, image, veth, bridge, addresses and limits; --json gives the same as data", async () => {
    const path = file("query.json", {
      version: 1,
      plugins: {
        lxc: { containers: [{ id, name, bridge: incusBridge, limits: { cpu: 1, memory: 128 } }] },
      },
    });
    expect(op(["apply", path]).status).toBe(0);

    // The busybox image asks Incus's bridge for an address by DHCP; wait until it has one.
    type Row = {
      name: string;
      id?: string;
      status: string;
      image?: string;
      veth?: string;
      master?: string;
      addresses: string[];
      config: Record<string, string>;
    };
    let row: Row | undefined;
    for (let attempt = 0; attempt < 40; attempt++) {
      const json = op(["query", "--plugin", "lxc", "--json"]);
      expect(json.status, json.stderr).toBe(0);
      row = (JSON.parse(json.stdout) as { lxc: { containers: Row[] } }).lxc.containers.find(
        (c) => c.name === name,
      );
      if ((row?.addresses.length ?? 0) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(row).toMatchObject({
      id: String(id),
      status: "running",
      image: testImage,
      veth: `vi${id}`,
      master: incusBridge,
    });
    expect(row?.config).toMatchObject({ "limits.cpu": "1", "limits.memory": "128MiB" });
    const address = row?.addresses[0] ?? "";
    expect(address).toMatch(/^198\.19\.250\.\d+$/);

    // Incus's own keys (volatile.*) are hidden unless --all asks for them.
    const brief = op(["query", "--plugin", "lxc", "--json"]);
    expect(brief.stdout).not.toContain("volatile.");
    const all = op(["query", "--plugin", "lxc", "--json", "--all"]);
    expect(all.status, all.stderr).toBe(0);
    const full = (
      JSON.parse(all.stdout) as {
        lxc: { containers: { name: string; put: { volatile: Record<string, string> } }[] };
      }
    ).lxc.containers.find((c) => c.name === name);
    expect(full?.put.volatile[`volatile.eth0.host_name`]).toBe(`vi${id}`);

    const table = op(["query", "--plugin", "lxc"]);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(
      /name\s+id\s+status\s+image\s+veth\s+bridge\s+addresses\s+cpu\s+memory\s+op/,
    );
    const line = table.stdout.split("\n").find((l) => l.startsWith(`${name} `)) ?? "";
    expect(line.split(/\s+/)).toEqual([
      name,
      String(id),
      "running",
      testImage,
      `vi${id}`,
      incusBridge,
      address,
      "1",
      "128MiB",
      "yes",
    ]);
  });
});

describe("paths in the file", () => {
  it("takes relative mount sources and image tarballs from the state file's directory, and the plan shows them resolved", () => {
    // Not in the sandbox: that holds op's own lock, which no container may mount read-write.
    const dir = mkdtempSync(join(tmpdir(), "optest-rel-"));
    try {
      mkdirSync(join(dir, "data"));
      writeFileSync(join(dir, "metadata.tar.gz"), "meta");
      writeFileSync(join(dir, "rootfs.tar.gz"), "rootfs");
      const name = `optest-${uid()}`;
      const path = join(dir, "state.json");
      writeFileSync(
        path,
        JSON.stringify({
          version: 1,
          plugins: {
            lxc: {
              images: [
                {
                  alias: `optest/rel-${uid()}`,
                  metadata: "metadata.tar.gz",
                  rootfs: "./rootfs.tar.gz",
                },
              ],
              containers: [{ id: testId(), name, mounts: [{ source: "data", path: "/data" }] }],
            },
          },
        }),
      );
      // Run from another directory: the paths must not depend on it.
      const result = op(["plan", path, "--json"]);
      expect(result.status, result.stderr).toBe(0);
      const plan = JSON.parse(result.stdout) as {
        actions: { resource: string; id: string; reason: string; after: Record<string, unknown> }[];
      };
      const image = plan.actions.find((a) => a.resource === "image");
      expect(image?.after).toMatchObject({
        metadata: join(dir, "metadata.tar.gz"),
        rootfs: join(dir, "rootfs.tar.gz"),
      });
      expect(image?.reason).toContain(
        `from ${join(dir, "metadata.tar.gz")} and ${join(dir, "rootfs.tar.gz")}`,
      );
      const create = plan.actions.find((a) => a.id === name);
      expect(create?.reason).toContain(`mounts ${join(dir, "data")} at /data`);
      expect(create?.after).toMatchObject({
        devices: { "mnt-data": { type: "disk", source: join(dir, "data"), path: "/data" } },
      });
      expect(process.cwd()).not.toBe(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a read-write mount of /etc unless allow_host_path says so, with the JSON path", () => {
    const path = file("etc.json", {
      version: 1,
      plugins: {
        lxc: { containers: [{ id: testId(), mounts: [{ source: "/etc", path: "/host-etc" }] }] },
      },
    });
    const result = op(["validate", path]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      '/plugins/lxc/containers/0/mounts/0/source: mounting /etc read-write gives the container a directory the host needs (it is /etc); add "readonly": true, or "allow_host_path": true',
    );
  });
});

describe("op validate warnings", () => {
  it("warns about op-dbus properties op ignores, as plan does, and still says the file is valid", () => {
    const path = file("ignored.json", {
      version: 1,
      plugins: {
        lxc: {
          containers: [{ id: testId(), properties: { ip: "198.18.0.2/24", gw: "198.18.0.1" } }],
        },
      },
    });
    const result = op(["validate", path]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(
      "warning: /plugins/lxc/containers/0/properties/ip: not used by op (ignored)\nwarning: /plugins/lxc/containers/0/properties/gw: not used by op (ignored)\n",
    );
    const plan = op(["plan", path]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stderr).toContain(
      "warning: /plugins/lxc/containers/0/properties/ip: not used by op (ignored)",
    );
  });
});

describe("failures through the CLI", () => {
  it("exits non-zero and leaves a failed ledger record with Incus's message when Incus refuses", async () => {
    const name = `optest-${uid()}`;
    containers.push(name);
    const path = file("refused.json", {
      version: 1,
      plugins: { lxc: { containers: [{ id: testId(), name, config: { "no.such.key": "x" } }] } },
    });
    const result = op(["apply", path]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `create lxc container ${name}: creating container ${name}: Incus refused:`,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const records = op(["ledger", "log", "--json"])
      .stdout.split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { status: string; target: string; error?: string });
    const failed = records.find((r) => r.target === name && r.status === "failed");
    expect(failed?.error).toMatch(/Incus refused: .*no\.such\.key/);
  });

  it("rejects a veth over 15 characters and an invalid name in the file, with JSON paths", () => {
    const path = file("bad.json", {
      version: 1,
      plugins: {
        lxc: {
          containers: [
            { id: 1, bridge: "br0", veth: "veth-name-too-long" },
            { id: "x", name: "9lives" },
          ],
        },
      },
    });
    const result = op(["validate", path]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      '/plugins/lxc/containers/0/veth: "veth-name-too-long" is not in the expected form: A Linux link name: 1 to 15 printable ASCII characters',
    );
    expect(result.stderr).toContain(
      '/plugins/lxc/containers/1/name: "9lives" is not in the expected form: An Incus instance name',
    );
  });

  it("names a missing image alias and shows how to declare it", () => {
    const path = file("alias.json", {
      version: 1,
      plugins: { lxc: { containers: [{ id: testId(), image: "optest/none" }] } },
    });
    const result = op(["plan", path]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      '/plugins/lxc/containers/0/image: image alias "optest/none" is not in the local image store',
    );
    expect(result.stderr).toContain("declare it under plugins.lxc.images");
  });

  it("says the Incus daemon is not running when its socket is missing", () => {
    const socket = join(sandbox.dir, "no.socket");
    const path = file("any.json", { version: 1, plugins: { lxc: { containers: [] } } });
    const result = op(["plan", path], { OP_INCUS_SOCKET: socket });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `[daemon-unavailable] (lxc query): the Incus daemon is not running: no socket at ${socket}`,
    );
    expect(result.stderr).toContain("hint: start the Incus daemon");
  });
});
