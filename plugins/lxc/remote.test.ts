/**
 * plugins.lxc.remote without a daemon: the files are checked before anything connects (a key
 * others can read, a key that is not the certificate's, a missing file), the live model of a
 * remote's container comes from Incus's state alone, the kernel fixes op makes on this host
 * are refused on a remote, and a target on another member is a move, held unless allowed.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import { liveContainer, planOf, quietCtx } from "./lxc.testing.js";
import { splitMemberKeys } from "./networks/apply.js";
import { lxcImage } from "./preimage.js";
import { remoteContainer } from "./query.js";
import { checkRemote, guardRemote, remoteOf } from "./remote.js";
import type { LxcAction, LxcLive } from "./types.js";

let dir: string;
const pair = (name: string) => {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
    ],
    { stdio: "ignore" },
  );
  chmodSync(key, 0o600);
  return { key, cert };
};
let client: { key: string; cert: string };
let other: { key: string; cert: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "opir-unit-"));
  client = pair("client");
  other = pair("other");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (fields: Record<string, unknown> = {}) =>
  ({
    url: "https://198.18.0.10:8443",
    client_cert: client.cert,
    client_key: client.key,
    server_cert: other.cert,
    ...fields,
  }) as Parameters<typeof remoteOf>[0];

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(OpError);
    return (error as OpError).message;
  }
  throw new Error("not refused");
}

describe("remoteOf", () => {
  it("pins the server certificate's SHA-256 fingerprint, read from its file", () => {
    const remote = remoteOf(spec());
    const expected = new X509Certificate(readFileSync(other.cert)).fingerprint256
      .replaceAll(":", "")
      .toLowerCase();
    expect(remote.fingerprint).toBe(expected);
    expect(remote.urls).toEqual(["https://198.18.0.10:8443"]);
    expect(remote.clientKey).toContain("PRIVATE KEY");
  });

  it("takes a trust fingerprint with colons, in any case", () => {
    const colons = `${"AB:".repeat(31)}AB`;
    expect(remoteOf(spec({ server_cert: undefined, trust: colons })).fingerprint).toBe(
      "ab".repeat(32),
    );
  });

  it("refuses a key others can read, naming its mode and the fix", () => {
    chmodSync(client.key, 0o644);
    try {
      expect(refusal(() => remoteOf(spec()))).toMatch(
        /remote\/client_key: .* is readable by others \(mode 0644\)/,
      );
    } finally {
      chmodSync(client.key, 0o600);
    }
  });

  it("refuses a key that is not the certificate's", () => {
    expect(refusal(() => remoteOf(spec({ client_key: other.key })))).toMatch(
      /remote\/client_key: .* is not the key of/,
    );
  });

  it("refuses a missing file, a certificate that is not one, and plain http", () => {
    expect(refusal(() => remoteOf(spec({ client_cert: join(dir, "none.crt") })))).toMatch(
      /remote\/client_cert: .*ENOENT/,
    );
    expect(refusal(() => remoteOf(spec({ server_cert: client.key })))).toMatch(
      /remote\/server_cert: is not a PEM certificate/,
    );
    expect(refusal(() => remoteOf(spec({ url: "http://198.18.0.10:8443" })))).toMatch(
      /remote\/url: .*only https/,
    );
  });
});

describe("checkRemote", () => {
  it("wants one of url/urls and one of server_cert/trust; refuses host mounts on a remote", () => {
    const section = {
      remote: spec({ urls: ["https://198.18.0.11"], trust: "ab".repeat(32) }),
      containers: [{ id: "web", mounts: [{ source: "/srv", path: "/srv" }] }],
    };
    expect(checkRemote(section, "/plugins/lxc")).toEqual([
      '/plugins/lxc/remote: give "url" or "urls" (one of them)',
      '/plugins/lxc/remote: give "server_cert" (a PEM file) or "trust" (its SHA-256 fingerprint), one of them',
      "/plugins/lxc/containers/0/mounts: a mount of a host directory cannot be checked or owned on a remote Incus (the directory would be on the remote host); use a volume",
    ]);
  });
});

describe("a remote's containers", () => {
  it("take their veth, bridge, addresses and eth0 state from Incus's state, nothing from this host", () => {
    const live = remoteContainer({
      name: "web",
      type: "container",
      status: "Running",
      architecture: "x86_64",
      ephemeral: false,
      stateful: false,
      description: "",
      profiles: ["default"],
      config: { "user.op.managed": "true" },
      devices: { eth0: { type: "nic", nictype: "bridged", parent: "br0", host_name: "vi7" } },
      location: "m1",
      state: {
        network: {
          eth0: {
            host_name: "vi7",
            state: "up",
            addresses: [
              { family: "inet", address: "198.18.0.7", scope: "global" },
              { family: "inet6", address: "fe80::1", scope: "link" },
            ],
          },
          lo: {
            state: "up",
            addresses: [{ family: "inet", address: "127.0.0.1", scope: "local" }],
          },
        },
      },
    });
    expect(live).toMatchObject({ veth: "vi7", master: "br0", nicUp: true, location: "m1" });
    expect(live.addresses).toEqual(["198.18.0.7"]);
  });

  it("a veth or eth0 fix would be made on this host: refused on a remote, before any change", () => {
    const action = {
      kind: "modify",
      plugin: "lxc",
      resource: "container",
      id: "web",
      before: liveContainer("web"),
      after: { path: "/plugins/lxc/containers/0" },
      changes: [{ path: "veth", before: "vi7x", after: "vi7" }],
      reason: "rename veth",
    } as unknown as LxcAction;
    const live = { remote: "https://198.18.0.10:8443" } as LxcLive;
    expect(guardRemote([action], live)).toEqual([
      expect.objectContaining({
        path: "/plugins/lxc/containers/0",
        message: expect.stringContaining(
          "a fix on the container's host, which op cannot make from here",
        ),
      }),
    ]);
    expect(guardRemote([action], { ...live, remote: undefined } as LxcLive)).toEqual([]);
  });

  it("a running container's eth0 re-plugged is refused on a remote (op restores it from this host)", () => {
    const replug = (status: string) =>
      ({
        kind: "modify",
        plugin: "lxc",
        resource: "container",
        id: "web",
        before: liveContainer("web", { status }),
        after: { path: "/plugins/lxc/containers/0", running: true },
        changes: [{ path: "devices.eth0", before: "br0", after: "br1" }],
        reason: "re-plug",
      }) as unknown as LxcAction;
    const live = { remote: "https://198.18.0.10:8443" } as LxcLive;
    expect(guardRemote([replug("running")], live)).toHaveLength(1);
    // A stopped one gets its NIC set up by Incus at start: nothing to restore.
    expect(guardRemote([replug("stopped")], live)).toEqual([]);
  });
});

describe("placement", () => {
  const live = (location?: string): LxcLive => ({
    containers: [
      liveContainer("web", {
        config: {
          "user.op.managed": "true",
          "user.op.image": "op-test/busybox",
          "user.op.id": "web",
        },
        ...(location === undefined ? {} : { location }),
      }),
    ],
    bridges: {},
    aliases: { "op-test/busybox": "f".repeat(64) },
  });
  const section = (fields: Record<string, unknown>) => ({
    containers: [{ id: "web", image: "op-test/busybox", running: false, ...fields }],
  });

  it("a group target, or the member it is on, is no change: the location is observed", async () => {
    expect(await planOf(section({ target: "@fast" }), live("m1"))).toEqual([]);
    expect(await planOf(section({ target: "m1" }), live("m1"))).toEqual([]);
    expect(await planOf(section({}), live("m1"))).toEqual([]);
  });

  it("a member target it is not on is a move: held without allow_move, planned with it", async () => {
    const [held] = await planOf(section({ target: "m2" }), live("m1"));
    expect(held?.reason).toBe("move from member m1 to m2");
    expect(held?.held).toContain('"allow_move": true');
    const [allowed] = await planOf(section({ target: "m2", allow_move: true }), live("m1"));
    expect(allowed?.held).toBeUndefined();
  });
});

describe("cluster networks", () => {
  it("give a member's pending definition only the member-specific keys", () => {
    expect(
      splitMemberKeys({ parent: "eth1", "ipv4.address": "198.18.0.1/24", "bgp.ipv4.nexthop": "x" }),
    ).toEqual({
      member: { parent: "eth1", "bgp.ipv4.nexthop": "x" },
      shared: { "ipv4.address": "198.18.0.1/24" },
    });
  });
});

describe("a remote's pre-image", () => {
  it("names the remote, so that an undo is applied there and not to the local Incus", async () => {
    const remoteSpec = {
      url: "https://198.18.0.10:8443",
      client_cert: "/c",
      client_key: "/k",
      trust: "ab".repeat(32),
    };
    const live: LxcLive = {
      remote: "https://198.18.0.10:8443",
      remoteSpec,
      containers: [liveContainer("web")],
      bridges: {},
      aliases: {},
    };
    const scope = {
      containers: [{ project: "default", name: "web", deleted: false, created: false }],
      objects: [],
    };
    const image = await lxcImage(scope, live, quietCtx);
    expect(image.section).toMatchObject({ remote: remoteSpec, containers: [{ id: "web" }] });
    const { remote: _, remoteSpec: __, ...local } = live;
    expect((await lxcImage(scope, local, quietCtx)).section).not.toHaveProperty("remote");
  });
});
