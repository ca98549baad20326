/**
 * Issue 19 part 2: the op.host Ansible collection (ansible/) run by a real `ansible-playbook`
 * (Debian's ansible-core) against two hosts at once: this machine (`ansible_connection=local`,
 * op from this tree with a sandboxed ledger) and a container of the Debian cloud image reached
 * over SSH, into which the Debian package of op is installed with dpkg. The playbook pushes a
 * state (a bridge and an nftables table of this test's own names), applies it in check
 * mode (changed, nothing applied), for real (changed, applied, recorded), again (unchanged),
 * then a changed state with --diff (each resource's change shown), a bad state (op's error),
 * and the state's removal. op.host.facts and op.host.ledger_verify run after each apply.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type CliSandbox, createCliSandbox, opBinary, repoRoot } from "./support/cli.js";
import { removeContainers, uid } from "./support/lxc.js";

const cloudImage = "op-test/debian-cloud";
const minutes = 60_000;
// One playbook run on both hosts: seconds here, more on a loaded machine.
const playTimeout = 5 * minutes;
const id = uid();
const container = `opan-${id}`;
// Names of this test only, the same on both hosts (the container has its own namespaces).
const link = `opan${id}`;
const table = `opan_${id}`;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Run {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 15 * minutes,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function ok(result: Run): string {
  expect(result.status, `${result.stderr}${result.stdout}`).toBe(0);
  return result.stdout;
}

/** The state both hosts get: a bridge and a table whose rule drops one test address. */
function state(mtu: number, dropped: string, ensure?: "absent") {
  const absent = ensure === undefined ? {} : { ensure };
  return {
    version: 1,
    plugins: {
      network: { interfaces: [{ name: link, type: "linux-bridge", mtu, ...absent }] },
      nftables: {
        tables: [
          {
            family: "inet",
            name: table,
            ...absent,
            chains: [
              {
                name: "input",
                type: "filter",
                hook: "input",
                priority: 10,
                policy: "accept",
                rules: [`ip saddr ${dropped} counter drop`],
              },
            ],
          },
        ],
      },
    },
  };
}

// The playbook of README's "Many hosts", as it is there.
const playbook = `- name: Make each host match its op state
  hosts: all
  gather_facts: false
  environment: "{{ op_env | default({}) }}"
  tasks:
    - name: Push the state and apply it
      op.host.apply:
        state: "{{ op_state }}"
        state_dest: "{{ op_state_dest }}"
        op_path: "{{ op_path | default(omit) }}"
      register: applied

    - name: Read what op sees
      op.host.facts:
        op_path: "{{ op_path | default(omit) }}"

    - name: Check the ledger
      op.host.ledger_verify:
        op_path: "{{ op_path | default(omit) }}"
      when: not ansible_check_mode
`;

interface TaskResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  msg?: string;
  hint?: string;
  details?: { path: string; message: string }[];
  actions?: { action: string; plugin: string; resource: string; id: string }[];
  run?: string | null;
  ledger_head?: string | null;
  converged?: boolean;
  ok?: boolean;
  size?: number;
  ansible_facts?: { op: Record<string, unknown> };
}

/** What test/support/ansible/op_results.py prints: each task's result per host. */
interface PlayResults {
  tasks: Record<string, Record<string, TaskResult>>;
}

describe("the op.host collection, run by ansible-playbook on this host and a container over SSH", () => {
  let cli: CliSandbox;
  let scratch: string;
  let key: string;
  let collections: string;
  let inventory: string;
  let address = "";
  const hosts = ["local", container];

  beforeAll(async () => {
    cli = createCliSandbox();
    scratch = cli.dir;
    key = join(scratch, "id_ed25519");
    ok(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "opan", "-f", key]));

    // The container, made by op itself, ready once sshd answers.
    const containerState = join(scratch, "container.json");
    writeFileSync(
      containerState,
      JSON.stringify({
        version: 1,
        plugins: {
          lxc: {
            containers: [
              {
                id: container,
                image: cloudImage,
                cloud_init: { user: "dev", ssh_authorized_keys: ["id_ed25519.pub"] },
                wait: { for: ["ssh"] },
              },
            ],
          },
        },
      }),
    );
    const made = cli.op(["apply", containerState]);
    expect(made.status, made.stderr + made.stdout).toBe(0);
    const listed = JSON.parse(ok(cli.op(["inventory", containerState, "--list"]))) as {
      _meta: { hostvars: Record<string, { ansible_host: string }> };
    };
    address = listed._meta.hostvars[container]?.ansible_host ?? "";
    expect(address).toMatch(/^198\.19\.250\.\d+$/);

    // op into the container as a user installs it: the Debian package, with dpkg.
    const built = run("bash", [join(repoRoot, "scripts", "package.sh"), "--out", scratch]);
    expect(built.status, built.stderr).toBe(0);
    const deb = /==> (\S+\.deb)/.exec(built.stdout)?.[1] ?? "";
    expect(deb).toMatch(/\.deb$/);
    ok(run("incus", ["file", "push", "--quiet", deb, `${container}/root/op.deb`]));
    ok(run("incus", ["exec", container, "--", "dpkg", "-i", "/root/op.deb"]));

    // The collection as a user installs it: built from galaxy.yml, installed into a path.
    ok(
      run("ansible-galaxy", [
        "collection",
        "build",
        join(repoRoot, "ansible"),
        "--output-path",
        scratch,
      ]),
    );
    collections = join(scratch, "collections");
    ok(
      run("ansible-galaxy", [
        "collection",
        "install",
        join(scratch, "op-host-0.1.0.tar.gz"),
        "-p",
        collections,
      ]),
    );

    inventory = join(scratch, "inventory.yml");
    writeFileSync(
      inventory,
      stringify({
        all: {
          vars: { ansible_python_interpreter: "/usr/bin/python3" },
          hosts: {
            local: {
              ansible_connection: "local",
              op_path: opBinary,
              op_env: cli.env,
              op_state_dest: join(scratch, "local", "state.json"),
            },
            [container]: {
              ansible_host: address,
              ansible_user: "dev",
              ansible_become: true,
              op_state_dest: "/etc/op/ansible.state.json",
            },
          },
        },
      }),
    );
    writeFileSync(join(scratch, "site.yml"), playbook);

    // cloud-init may still be making the user when sshd first answers.
    const deadline = Date.now() + 3 * minutes;
    let ping = playbookRun(["-m", "ping"], "adhoc");
    while (ping.status !== 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      ping = playbookRun(["-m", "ping"], "adhoc");
    }
    ok(ping);
  }, 25 * minutes);

  afterAll(async () => {
    try {
      // Only what this test made: its link and table on this host, its container.
      if (run("ip", ["link", "show", "dev", link]).status === 0) run("ip", ["link", "del", link]);
      if (run("nft", ["list", "table", "inet", table]).status === 0)
        run("nft", ["delete", "table", "inet", table]);
      await removeContainers([container]);
    } finally {
      cli?.cleanup();
    }
  }, 5 * minutes);

  /** `ansible-playbook site.yml` (or `ansible all` with "adhoc") with op_state given as extra vars. */
  function playbookRun(args: string[], mode: "json" | "text" | "adhoc", opState?: object): Run {
    const env = {
      ANSIBLE_COLLECTIONS_PATH: collections,
      ANSIBLE_HOST_KEY_CHECKING: "False",
      ANSIBLE_NOCOLOR: "1",
      ANSIBLE_PRIVATE_KEY_FILE: key,
      ANSIBLE_RETRY_FILES_ENABLED: "False",
      ...(mode === "json"
        ? {
            ANSIBLE_CALLBACK_PLUGINS: join(repoRoot, "test", "support", "ansible"),
            ANSIBLE_STDOUT_CALLBACK: "op_results",
          }
        : {}),
    };
    if (mode === "adhoc") return run("ansible", ["-i", inventory, "all", ...args], env);
    const extra = join(scratch, "extra.json");
    writeFileSync(extra, JSON.stringify({ op_state: opState }));
    return run(
      "ansible-playbook",
      ["-i", inventory, join(scratch, "site.yml"), "-e", `@${extra}`, ...args],
      env,
    );
  }

  /** The playbook's per-task, per-host results. */
  function played(
    opState: object,
    args: string[] = [],
  ): { status: number; tasks: Map<string, Record<string, TaskResult>> } {
    const result = playbookRun(args, "json", opState);
    let document: PlayResults;
    try {
      document = JSON.parse(result.stdout) as PlayResults;
    } catch {
      throw new Error(
        `ansible-playbook printed no results (exit ${result.status}): ${result.stderr}${result.stdout}`,
      );
    }
    return { status: result.status, tasks: new Map(Object.entries(document.tasks)) };
  }

  const onHost = (host: string, command: string[]): Run =>
    host === "local"
      ? run(command[0] as string, command.slice(1))
      : run("incus", ["exec", container, "--", ...command]);
  const linkMtu = (host: string): number | undefined => {
    const shown = onHost(host, ["ip", "-j", "link", "show", "dev", link]);
    return shown.status === 0 ? (JSON.parse(shown.stdout) as { mtu: number }[])[0]?.mtu : undefined;
  };
  const tableRules = (host: string): string | undefined => {
    const shown = onHost(host, ["nft", "list", "table", "inet", table]);
    return shown.status === 0 ? shown.stdout : undefined;
  };

  it(
    "check mode plans (changed) and applies nothing on either host",
    () => {
      const { status, tasks } = played(state(1500, "198.18.0.13"), ["--check"]);
      expect(status).toBe(0);
      for (const host of hosts) {
        const applied = tasks.get("Push the state and apply it")?.[host];
        expect(applied?.changed, host).toBe(true);
        expect(applied?.run).toBeNull();
        expect(
          applied?.actions?.map((a) => `${a.action} ${a.plugin} ${a.resource} ${a.id}`).sort(),
        ).toEqual([`create network link ${link}`, `create nftables table inet/${table}`]);
        expect(linkMtu(host), host).toBeUndefined();
        expect(tableRules(host), host).toBeUndefined();
        expect(tasks.get("Check the ledger")?.[host]?.skipped).toBe(true);
      }
      // Check mode wrote no state file where the module keeps it.
      expect(onHost(container, ["test", "-e", "/etc/op/ansible.state.json"]).status).not.toBe(0);
    },
    playTimeout,
  );

  it(
    "applies for real (changed, recorded), then again changes nothing",
    () => {
      const first = played(state(1500, "198.18.0.13"));
      expect(first.status).toBe(0);
      for (const host of hosts) {
        const applied = first.tasks.get("Push the state and apply it")?.[host];
        expect(applied?.changed, host).toBe(true);
        expect(applied?.converged).toBe(true);
        expect(applied?.run).toMatch(/\S/);
        expect(applied?.ledger_head).toMatch(/^[0-9a-f]{64}$/);
        expect(linkMtu(host), host).toBe(1500);
        expect(tableRules(host), host).toContain("ip saddr 198.18.0.13 counter");
        const facts = first.tasks.get("Read what op sees")?.[host]?.ansible_facts?.op;
        expect(JSON.stringify(facts?.network)).toContain(`"name":"${link}"`);
        expect(JSON.stringify(facts?.nftables)).toContain(table);
        expect(facts?.format_version).toMatch(/^1\.\d+$/);
        const verified = first.tasks.get("Check the ledger")?.[host];
        expect(verified).toMatchObject({ ok: true, changed: false });
        expect(verified?.size).toBeGreaterThan(0);
      }
      // The state the module wrote on the target, as it owns it: 0600.
      expect(ok(onHost(container, ["stat", "-c", "%a", "/etc/op/ansible.state.json"])).trim()).toBe(
        "600",
      );
      expect(JSON.parse(ok(onHost(container, ["cat", "/etc/op/ansible.state.json"])))).toEqual(
        state(1500, "198.18.0.13"),
      );

      const again = played(state(1500, "198.18.0.13"));
      expect(again.status).toBe(0);
      for (const host of hosts) {
        const applied = again.tasks.get("Push the state and apply it")?.[host];
        expect(applied?.changed, host).toBe(false);
        expect(applied?.actions).toEqual([]);
        expect(applied?.run ?? null).toBeNull();
      }
    },
    playTimeout,
  );

  it(
    "--diff shows each resource's change on both hosts",
    () => {
      const result = playbookRun(["--diff"], "text", state(1400, "198.18.0.14"));
      expect(result.status, result.stdout + result.stderr).toBe(0);
      const output = result.stdout;
      for (const host of hosts) {
        expect(linkMtu(host), host).toBe(1400);
        expect(tableRules(host), host).toContain("ip saddr 198.18.0.14 counter");
      }
      // Ansible's unified diff of each modify's changed fields, headed with op's plugin, kind and
      // id: once per host.
      const times = (pattern: RegExp) =>
        output.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
      expect(times(new RegExp(`^--- before: network link ${link} \\(modify\\)$`))).toBe(2);
      expect(
        times(new RegExp(`^\\+\\+\\+ after: nftables table inet/${table} \\(modify\\)$`)),
      ).toBe(2);
      expect(times(/^-mtu: 1500$/)).toBe(2);
      expect(times(/^\+mtu: 1400$/)).toBe(2);
      expect(times(/^-chain input\/rules: ip saddr 198\.18\.0\.13 counter .*drop$/)).toBe(2);
      expect(times(/^\+chain input\/rules: ip saddr 198\.18\.0\.14 counter drop$/)).toBe(2);
      expect(output).toMatch(new RegExp(`changed: \\[${container}\\]`));
      expect(output).toMatch(/changed: \[local\]/);
    },
    playTimeout,
  );

  it(
    "a bad state fails with op's error and hint, naming the path, and changes nothing",
    () => {
      const bad = { version: 1, plugins: { nftabels: { tables: [] } } };
      const { status, tasks } = played(bad);
      expect(status).not.toBe(0);
      for (const host of hosts) {
        const applied = tasks.get("Push the state and apply it")?.[host];
        expect(applied?.failed, host).toBe(true);
        expect(applied?.msg).toContain('unknown plugin "nftabels"; did you mean "nftables"?');
        expect(applied?.hint).toMatch(/nothing was changed/);
        expect(applied?.details?.map((detail) => detail.path)).toContain("/plugins/nftabels");
        expect(linkMtu(host), host).toBe(1400);
      }
    },
    playTimeout,
  );

  it(
    "ledger_verify fails with op's error where there is no ledger",
    () => {
      const missing = `/tmp/opan-none-${id}`;
      const result = playbookRun(
        [
          "-o",
          "-m",
          "op.host.ledger_verify",
          "-a",
          `ledger=${missing} op_path={{ op_path | default(omit) }}`,
        ],
        "adhoc",
      );
      expect(result.status).not.toBe(0);
      for (const host of hosts) {
        const line = result.stdout.split("\n").find((entry) => entry.startsWith(`${host} | `));
        expect(line, result.stdout).toContain("FAILED!");
        expect(line).toContain(`there is no ledger at ${missing}`);
        expect(line).toContain("check the --ledger path");
      }
    },
    playTimeout,
  );

  it(
    "removes what it made through the same module",
    () => {
      const { status, tasks } = played(state(1400, "198.18.0.14", "absent"));
      expect(status).toBe(0);
      for (const host of hosts) {
        expect(tasks.get("Push the state and apply it")?.[host]?.changed, host).toBe(true);
        expect(linkMtu(host), host).toBeUndefined();
        expect(tableRules(host), host).toBeUndefined();
      }
    },
    playTimeout,
  );
});

describe("ansible-test sanity on the collection", () => {
  it(
    "runs every test Debian's ansible-core lists, offline, and each passes",
    () => {
      const sanity = run("bash", [join(repoRoot, "scripts", "ansible-sanity.sh")]);
      expect(sanity.status, sanity.stdout + sanity.stderr).toBe(0);
      expect(sanity.stdout).toContain("could not run here (0):");
      expect(sanity.stdout).toContain("failed (0):");
      const passed = /^passed \(\d+\): (.*)$/m.exec(sanity.stdout)?.[1]?.split(" ") ?? [];
      expect(passed).toEqual(
        expect.arrayContaining([
          "validate-modules",
          "import",
          "compile",
          "pylint",
          "pep8",
          "yamllint",
          "ansible-doc",
        ]),
      );
    },
    10 * minutes,
  );
});

// The README shows this playbook: keep the two the same.
it("README's Many hosts section shows the playbook the test runs", () => {
  expect(readFileSync(join(repoRoot, "README.md"), "utf8")).toContain(playbook);
});
