/**
 * Issue 15's workstation flow against the real daemon: a container from the Debian cloud image
 * (scripts/setup-cloud-image.sh) on Incus's test bridge `opincbr0` (DHCP 198.19.250.0/24, no
 * NAT), an SSH key the test generates, `wait: {for: [ssh]}`, a login over ssh, `ansible -m
 * ping` through `op inventory`, a write into a shifted mount, and the tear-down that keeps the
 * mount's data. Then shift and uid/gid on busybox containers, and the errors: a wait that
 * times out, ssh asked of an image without sshd, a public key that is not one.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox, opBinary } from "./support/cli.js";
import {
  inContainer,
  incus,
  instance,
  reconcile,
  removeContainers,
  testImage,
  uid,
} from "./support/lxc.js";

const cloudImage = "op-test/debian-cloud";
const made: string[] = [];
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `optest-${prefix}-`));
  dirs.push(dir);
  return dir;
}

function run(command: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The base of the ids an unprivileged container's root maps to (root's range in /etc/subuid). */
function idmapBase(): number {
  const line = readFileSync("/etc/subuid", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("root:"));
  return Number(line?.split(":")[1] ?? 1000000);
}

afterAll(async () => {
  await removeContainers(made);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("from a state file to a container you can SSH into", () => {
  let cli: CliSandbox;
  const name = `optest-prov-${uid()}`;
  made.push(name);
  let key: string;
  let stateFile: string;
  let data: string;

  beforeAll(() => {
    cli = createCliSandbox();
    dirs.push(cli.dir);
    key = join(cli.dir, "id_ed25519");
    const keygen = run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "optest", "-f", key]);
    expect(keygen.status, keygen.stderr).toBe(0);
    data = tempDir("prov-data");
    stateFile = join(cli.dir, "state.json");
  });

  const write = (container: object) =>
    writeFileSync(
      stateFile,
      JSON.stringify({ version: 1, plugins: { lxc: { containers: [container] } } }),
    );
  const present = () => ({
    id: name,
    image: cloudImage,
    cloud_init: { user: "dev", ssh_authorized_keys: ["id_ed25519.pub"] },
    wait: { for: ["ssh"] },
    mounts: [{ source: data, path: "/srv/data", preserve: true, shift: true }],
    groups: ["workstations"],
    ansible_vars: { role: "dev-box" },
  });
  const ssh = (address: string, command: string) =>
    run("ssh", [
      "-i",
      key,
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=5",
      `dev@${address}`,
      command,
    ]);

  it("applies, waits for sshd, logs in, pings with Ansible through op inventory, tears down keeping the data", async () => {
    write(present());
    const started = Date.now();
    const applied = cli.op(["apply", stateFile]);
    expect(applied.status, applied.stderr + applied.stdout).toBe(0);
    const appliedMs = Date.now() - started;

    const inventory = cli.op(["inventory", stateFile, "--list"]);
    expect(inventory.status, inventory.stderr).toBe(0);
    const listed = JSON.parse(inventory.stdout) as {
      _meta: { hostvars: Record<string, Record<string, unknown>> };
      workstations: { hosts: string[] };
    };
    expect(listed.workstations.hosts).toEqual([name]);
    const vars = listed._meta.hostvars[name] ?? {};
    expect(vars).toMatchObject({ ansible_user: "dev", role: "dev-box" });
    const address = String(vars.ansible_host);
    expect(address).toMatch(/^198\.19\.250\.\d+$/);
    const yaml = cli.op(["inventory", stateFile]);
    expect(yaml.stdout).toContain(`workstations:\n      hosts:\n        ${name}:\n`);
    expect(yaml.stdout).toContain(`ansible_host: ${address}\n`);
    const ini = cli.op(["inventory", stateFile, "--format", "ini"]);
    expect(ini.stdout).toBe(
      `[workstations]\n${name} ansible_host=${address} ansible_user=dev role=dev-box\n`,
    );
    const host = cli.op(["inventory", stateFile, "--host", name]);
    expect(JSON.parse(host.stdout)).toEqual(vars);

    // cloud-init may still be creating the user when sshd first answers: retried for a while.
    let login = ssh(address, "true");
    while (login.status !== 0 && Date.now() - started < 180_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      login = ssh(address, "true");
    }
    const loginMs = Date.now() - started;
    expect(login.status, login.stderr).toBe(0);
    console.log(
      `lxc-provision: op apply took ${(appliedMs / 1000).toFixed(1)} s; first ssh login ${(loginMs / 1000).toFixed(1)} s after apply started`,
    );
    expect(loginMs).toBeLessThan(180_000);

    const wrapper = join(cli.dir, "inventory");
    writeFileSync(wrapper, `#!/bin/sh\nexec ${opBinary} inventory ${stateFile} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const ping = run("ansible", ["-i", wrapper, "all", "-m", "ping", "--private-key", key, "-o"], {
      ...cli.env,
      ANSIBLE_HOST_KEY_CHECKING: "False",
    });
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    expect(ping.stdout).toMatch(new RegExp(`${name} \\| SUCCESS`));

    const wrote = ssh(address, "echo kept | sudo tee /srv/data/hello.txt >/dev/null");
    expect(wrote.status, wrote.stderr).toBe(0);

    // The plan after the apply is empty: the mount's shift and the cloud-init keys are not drift.
    const again = cli.op(["plan", stateFile, "--json"]);
    expect(JSON.parse(again.stdout).actions).toEqual([]);

    write({ id: name, ensure: "absent", mounts: present().mounts });
    const removed = cli.op(["apply", stateFile]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(await instance(name)).toBeUndefined();
    expect(readFileSync(join(data, "hello.txt"), "utf8")).toBe("kept\n");
    // Written as root inside a shifted mount: root on the host.
    expect(statSync(join(data, "hello.txt")).uid).toBe(0);

    write(present());
    const gone = cli.op(["inventory", stateFile, "--list"]);
    expect(JSON.parse(gone.stdout)._meta.hostvars).toEqual({});
  }, 300_000);

  it("refuses a public key that is not a key, naming the path, before any change", () => {
    const bad = join(cli.dir, "bad.pub");
    writeFileSync(bad, "ssh-ed25519 not-a-key optest\n");
    write({
      ...present(),
      id: `optest-badkey-${uid()}`,
      cloud_init: { ssh_authorized_keys: [bad] },
    });
    const refused = cli.op(["plan", stateFile]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("/plugins/lxc/containers/0/cloud_init/ssh_authorized_keys/0");
    expect(refused.stderr).toContain(bad);
  });
});

describe("wait errors", () => {
  it("a wait that times out names the container and the step", async () => {
    const name = `optest-late-${uid()}`;
    made.push(name);
    const result = await reconcile({
      containers: [{ id: name, image: cloudImage, wait: { for: ["cloud-init"], timeout: 1 } }],
    });
    expect(result.failed).toBe(1);
    expect(result.errors.get(name)).toMatch(
      new RegExp(`container ${name} was not ready within 1 s: still waiting for cloud-init`),
    );
  }, 60_000);

  it("ssh on an image without sshd fails at once with a clear message", async () => {
    const name = `optest-nossh-${uid()}`;
    made.push(name);
    const started = Date.now();
    const result = await reconcile({
      containers: [{ id: name, image: testImage, wait: { for: ["ssh"], timeout: 120 } }],
    });
    expect(result.failed).toBe(1);
    expect(result.errors.get(name)).toContain(
      `container ${name}: its image has no SSH server (/usr/sbin/sshd)`,
    );
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);
});

describe("wait on a start", () => {
  it("a stopped container started by the file is returned only once it has an address", async () => {
    const name = `optest-start-${uid()}`;
    made.push(name);
    const entry = { id: name, image: testImage, wait: { for: ["ip"], timeout: 60 } };
    const created = await reconcile({ containers: [{ ...entry, running: false }] });
    expect(Object.fromEntries(created.errors)).toEqual({});
    const started = await reconcile({ containers: [entry] });
    expect(Object.fromEntries(started.errors)).toEqual({});
    expect(started.actions.map((a) => `${a.kind} ${a.id}: ${a.reason}`)).toEqual([
      `modify ${name}: start`,
    ]);
    // Read as soon as the run returns: the start alone returns before DHCP has answered.
    const state = await incus.request<{
      network: Record<string, { addresses: { family: string; scope: string }[] }> | null;
    }>("GET", `/1.0/instances/${name}/state`);
    expect(
      state.network?.eth0?.addresses.some((a) => a.family === "inet" && a.scope === "global"),
    ).toBe(true);
  }, 90_000);
});

describe("mounts: shift and owner", () => {
  it("a shifted mount is writable from inside an unprivileged container, and shift is not reverted", async () => {
    const name = `optest-shift-${uid()}`;
    made.push(name);
    const shared = tempDir("shift");
    const container = {
      id: name,
      image: testImage,
      mounts: [{ source: shared, path: "/shared", shift: true }],
    };
    const created = await reconcile({ containers: [container] });
    expect(created.failed).toBe(0);
    expect(created.remaining).toEqual([]);
    expect((await instance(name))?.config["security.privileged"]).not.toBe("true");
    inContainer(
      name,
      "touch /shared/by-root && touch /shared/by-1000 && chown 1000:1000 /shared/by-1000",
    );
    expect(statSync(join(shared, "by-root")).uid).toBe(0);
    expect(statSync(join(shared, "by-1000"))).toMatchObject({ uid: 1000, gid: 1000 });
    expect((await reconcile({ containers: [container] })).actions).toEqual([]);
  }, 120_000);

  it("uid/gid give the host directory its owner, and a hand chown is put back", async () => {
    const name = `optest-owner-${uid()}`;
    made.push(name);
    const shared = tempDir("owner");
    const root = idmapBase();
    const container = {
      id: name,
      image: testImage,
      mounts: [{ source: shared, path: "/shared", uid: root, gid: root }],
    };
    const created = await reconcile({ containers: [container] });
    expect(created.failed).toBe(0);
    expect(created.remaining).toEqual([]);
    // Without shift, the container's root is the host's `root` (its idmap base).
    inContainer(name, "touch /shared/made-inside");
    expect(statSync(join(shared, "made-inside")).uid).toBe(root);

    chownSync(shared, 0, 0);
    const fixed = await reconcile({ containers: [container] });
    expect(fixed.actions.map((action) => action.reason)).toEqual([
      `chown the host directory of mnt-shared 0:0 → ${root}:${root}`,
    ]);
    expect(fixed.remaining).toEqual([]);
    expect(statSync(shared)).toMatchObject({ uid: root, gid: root });
    expect(existsSync(join(shared, "made-inside"))).toBe(true);
  }, 120_000);
});

describe("cloud_init changed on an existing container", () => {
  it("is stored and said to take effect on re-create; recreate_on_change replaces the container", async () => {
    const name = `optest-ci-${uid()}`;
    made.push(name);
    const container = (packages: string[], recreate = false) => ({
      id: name,
      image: testImage,
      cloud_init: { user: "dev", packages, recreate_on_change: recreate },
    });
    expect((await reconcile({ containers: [container(["curl"])] })).failed).toBe(0);
    const uuid = (await instance(name))?.config["volatile.uuid"];
    expect(uuid).toBeDefined();

    const kept = await reconcile({ containers: [container(["curl", "git"])] });
    expect(kept.actions.map((a) => [a.kind, a.reason])).toEqual([
      [
        "modify",
        'change cloud-init.vendor-data (stored now; takes effect when the container is re-created, since cloud-init runs once; "recreate_on_change": true does that)',
      ],
    ]);
    expect(kept.remaining).toEqual([]);
    expect((await instance(name))?.config["volatile.uuid"]).toBe(uuid);
    expect((await instance(name))?.config["cloud-init.vendor-data"]).toContain('"git"');

    const replaced = await reconcile({ containers: [container(["git"], true)] });
    expect(replaced.actions.map((a) => a.kind)).toEqual(["delete", "create"]);
    expect(replaced.remaining).toEqual([]);
    const now = await instance(name);
    expect(now?.config["volatile.uuid"]).not.toBe(uuid);
    expect(now?.config["cloud-init.vendor-data"]).not.toContain('"curl"');
  }, 120_000);
});
