/**
 * The provisioning fields from the file to the plan: `cloud_init` rendered into config at
 * prepare (problems with JSON paths), the plan's line for a changed cloud-init and the
 * replacement `recreate_on_change` asks for, `shift` on the disk device, `uid`/`gid` compared
 * with the owner the query read, and the inventory fields carried along.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cloudInitKeys } from "../cloud-init.js";
import { diffLxc } from "../diff.js";
import { liveContainer } from "../lxc.testing.js";
import { prepareContainer } from "../prepare.js";
import type { LiveContainer, LxcContainerSpec, LxcDesired, LxcLive } from "../types.js";

const dir = mkdtempSync(join(tmpdir(), "op-provision-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A real ed25519 public key's shape: type name, then 32 key bytes.
const blob = Buffer.concat([
  Buffer.from([0, 0, 0, 11]),
  Buffer.from("ssh-ed25519"),
  Buffer.from([0, 0, 0, 32]),
  Buffer.alloc(32, 7),
]).toString("base64");
const key = `ssh-ed25519 ${blob} test@op`;

function prepared(spec: Partial<LxcContainerSpec>) {
  const problems: string[] = [];
  const container = prepareContainer(
    { id: "web", image: "op-test/debian-cloud", ...spec } as LxcContainerSpec,
    "/plugins/lxc/containers/0",
    "fallback",
    { add: (path, message) => problems.push(`${path}: ${message}`) },
    (path) => (path.startsWith("/") ? path : join(dir, path)),
  );
  return { container, problems };
}

/** A live container that matches `container` exactly (what op made of it earlier). */
function liveOf(container: ReturnType<typeof prepared>["container"]): LiveContainer {
  return liveContainer(container.name, {
    project: container.project,
    id: container.id,
    status: "running",
    image: container.image,
    profiles: container.profiles,
    config: { ...container.config },
    devices: structuredClone(container.devices),
  });
}

function plan(wanted: ReturnType<typeof prepared>["container"], live: LiveContainer) {
  const desired: LxcDesired = { prune: false, images: [], containers: [wanted], absent: [] };
  const state: LxcLive = { containers: [live], bridges: {}, aliases: {} };
  return diffLxc(desired, state);
}

describe("cloud_init at prepare", () => {
  it("renders the user and the keys of a .pub file (from the state file's directory) into vendor-data", () => {
    writeFileSync(join(dir, "me.pub"), `${key}\n`);
    const { container, problems } = prepared({
      cloud_init: { user: "dev", ssh_authorized_keys: ["me.pub"] },
      groups: ["lab"],
      ansible_vars: { role: "db" },
    });
    expect(problems).toEqual([]);
    const vendor = container.config[cloudInitKeys.vendorData] ?? "";
    expect(vendor.startsWith("#cloud-config\n")).toBe(true);
    expect(JSON.parse(vendor.slice("#cloud-config\n".length)).users[0]).toMatchObject({
      name: "dev",
      ssh_authorized_keys: [key],
    });
    expect(container.provision).toEqual({
      recreateOnCloudInitChange: false,
      user: "dev",
      groups: ["lab"],
      ansibleVars: { role: "db" },
    });
  });

  it("gives the default user and wait's default timeout", () => {
    const { container } = prepared({ cloud_init: {}, wait: { for: ["ssh"] } });
    expect(container.provision).toMatchObject({
      user: "debian",
      wait: { for: ["ssh"], timeout: 180 },
    });
  });

  it("refuses a key that is not a key and an unreadable .pub with the entry's JSON path", () => {
    writeFileSync(join(dir, "bad.pub"), "ssh-ed25519 AAAA optest\n");
    const { problems } = prepared({
      cloud_init: { ssh_authorized_keys: [key, "bad.pub", "missing.pub"] },
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      new RegExp(
        `^/plugins/lxc/containers/0/cloud_init/ssh_authorized_keys/1: line 1 of ${join(dir, "bad.pub")} `,
      ),
    );
    expect(problems[1]).toMatch(
      /^\/plugins\/lxc\/containers\/0\/cloud_init\/ssh_authorized_keys\/2: ".*missing\.pub" is neither a public key nor a readable \.pub file/,
    );
  });

  it("leaves a relative .pub path to prepare when there is no state file directory (op validate)", () => {
    const problems: string[] = [];
    prepareContainer(
      { id: "web", cloud_init: { ssh_authorized_keys: ["nowhere.pub"] } } as LxcContainerSpec,
      "/plugins/lxc/containers/0",
      "fallback",
      { add: (path, message) => problems.push(`${path}: ${message}`) },
    );
    expect(problems).toEqual([]);
  });

  it("refuses a cloud-init key given both in config and in cloud_init", () => {
    const { problems } = prepared({
      config: { [cloudInitKeys.userData]: "#cloud-config\n{}\n" },
      cloud_init: { user_data: { runcmd: ["true"] } },
    });
    expect(problems).toEqual([
      "/plugins/lxc/containers/0/config/cloud-init.user-data: cloud-init.user-data is also rendered from /plugins/lxc/containers/0/cloud_init: give it in one place",
    ]);
  });
});

describe("a changed cloud_init on an existing container", () => {
  const before = prepared({ cloud_init: { user: "dev", packages: ["curl"] } }).container;

  it("is stored with a plan line saying it takes effect on re-create", () => {
    const after = prepared({ cloud_init: { user: "dev", packages: ["curl", "git"] } }).container;
    const actions = plan(after, liveOf(before));
    expect(actions.map((a) => [a.kind, a.reason])).toEqual([
      [
        "modify",
        'change cloud-init.vendor-data (stored now; takes effect when the container is re-created, since cloud-init runs once; "recreate_on_change": true does that)',
      ],
    ]);
  });

  it("replaces the container with recreate_on_change", () => {
    const after = prepared({
      cloud_init: { user: "dev", packages: ["git"], recreate_on_change: true },
    }).container;
    const actions = plan(after, liveOf(before));
    expect(actions.map((a) => [a.kind, a.reason])).toEqual([
      [
        "delete",
        "cloud-init.vendor-data changed: replaced (delete + create) so cloud-init runs again (recreate_on_change)",
      ],
      [
        "create",
        "cloud-init.vendor-data changed: replaced (delete + create) so cloud-init runs again (recreate_on_change)",
      ],
    ]);
  });

  it("is left alone by recreate_on_change when only other fields change", () => {
    const same = prepared({
      cloud_init: { user: "dev", packages: ["curl"], recreate_on_change: true },
    });
    const live = liveOf(before);
    live.config["limits.cpu"] = "2";
    expect(plan(same.container, live).map((a) => a.kind)).toEqual(["modify"]);
  });
});

describe("mounts", () => {
  it("puts shift on the disk device, so a live shift=true is not drift", () => {
    const { container } = prepared({ mounts: [{ source: "/srv/x", path: "/x", shift: true }] });
    expect(container.devices["mnt-x"]).toEqual({
      type: "disk",
      source: "/srv/x",
      path: "/x",
      shift: "true",
    });
    expect(plan(container, liveOf(container))).toEqual([]);
    const unshifted = liveOf(container);
    delete unshifted.devices["mnt-x"]?.shift;
    expect(plan(container, unshifted).map((a) => a.reason)).toEqual([
      "change device mnt-x: /srv/x at /x → /srv/x at /x (shifted)",
    ]);
  });

  it("compares uid/gid with the owner the query read, and leaves out what the file leaves out", () => {
    const { container } = prepared({ mounts: [{ source: "/srv/x", path: "/x", uid: 1000 }] });
    const live = liveOf(container);
    live.owners = { "mnt-x": { uid: 1000, gid: 5 } };
    expect(plan(container, live)).toEqual([]);
    live.owners = { "mnt-x": { uid: 0, gid: 5 } };
    expect(plan(container, live).map((a) => a.reason)).toEqual([
      "chown the host directory of mnt-x 0:5 → 1000:(kept)",
    ]);
  });
});
