/**
 * Issue 16 part 1: the Debian package, built by scripts/package.sh, installed with dpkg into a
 * clean Debian 12 container (the cloud image scripts/setup-cloud-image.sh builds) that has no
 * network, no repository and no npm; there op answers, validates, runs its doctor, applies a
 * network and nftables file in the container's own namespaces (also through the boot unit),
 * the units verify, an upgrade keeps the ledger, key and state file, and a purge keeps the
 * ledger as the package's description says.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "./support/cli.js";
import { deleteIfPresent, uid } from "./support/lxc.js";

const cloudImage = "op-test/debian-cloud";
const name = `optest-pkg-${uid()}`;
const scratch = mkdtempSync(join(tmpdir(), "optest-pkg-"));
const minutes = 60_000;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], timeout = 5 * minutes): Run {
  const result = spawnSync(command, args, { encoding: "utf8", timeout });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A shell command inside the test container, as its root. */
function inside(script: string): Run {
  return run("incus", ["exec", name, "--", "sh", "-c", script]);
}

function ok(result: Run): string {
  expect(result.status, `${result.stderr}${result.stdout}`).toBe(0);
  return result.stdout;
}

/** The .deb of `version` made from `deb` (same content, another version), for the upgrade. */
function rebuiltAs(deb: string, version: string): string {
  const tree = join(scratch, `tree-${version}`);
  ok(run("dpkg-deb", ["-R", deb, tree]));
  const control = join(tree, "DEBIAN", "control");
  writeFileSync(
    control,
    readFileSync(control, "utf8").replace(/^Version: .*$/m, `Version: ${version}`),
  );
  const out = join(scratch, `op_${version}.deb`);
  // Uncompressed: this copy only travels to the container.
  ok(run("dpkg-deb", ["--root-owner-group", "-Znone", "--build", tree, out]));
  return out;
}

// The file applied inside the container: a bridge with an address and an nftables table,
// in the container's own network namespace (the test range, no NAT, nothing of the host's).
const bridge = "optest-pkg-br";
const table = "optest_pkg";
const stateFile = JSON.stringify({
  version: 1,
  plugins: {
    network: {
      interfaces: [
        {
          name: bridge,
          type: "linux-bridge",
          ipv4: { addresses: [{ ip: "198.18.77.1", prefix: 24 }] },
        },
      ],
    },
    nftables: {
      tables: [
        {
          family: "inet",
          name: table,
          chains: [
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: 10,
              policy: "accept",
              rules: ["ip saddr 198.19.0.13 counter drop"],
            },
          ],
        },
      ],
    },
  },
});

const bridgeAddresses = () =>
  (
    JSON.parse(inside(`ip -j -4 addr show dev ${bridge} 2>/dev/null || echo []`).stdout) as {
      addr_info: { local: string }[];
    }[]
  ).flatMap((link) => link.addr_info.map((info) => info.local));

let deb = "";
const started = Date.now();

beforeAll(async () => {
  const built = run(
    "bash",
    [join(repoRoot, "scripts", "package.sh"), "--out", scratch],
    15 * minutes,
  );
  expect(built.status, built.stderr).toBe(0);
  deb = /==> (\S+\.deb)/.exec(built.stdout)?.[1] ?? "";
  expect(deb).toMatch(/\/op_0\.\d+\.\d+-1_\w+\.deb$/);
  // No profile: no NIC, so the container has no network at all, and a root disk only.
  ok(run("incus", ["init", cloudImage, name, "--no-profiles", "--storage", "default"]));
  ok(run("incus", ["start", name]));
  // systemd answers once it is up; `degraded` too (ifupdown fails: there is no eth0).
  for (let attempt = 0; attempt < 60; attempt++) {
    const state = inside("systemctl is-system-running --wait").stdout.trim();
    if (["running", "degraded"].includes(state)) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  ok(run("incus", ["file", "push", "--quiet", deb, `${name}/root/op.deb`]));
}, 20 * minutes);

afterAll(async () => {
  try {
    if (
      run("incus", ["info", name]).status === 0 &&
      !run("incus", ["list", name, "-f", "csv", "-c", "s"]).stdout.includes("STOPPED")
    ) {
      run("incus", ["stop", name, "--force"]);
    }
    await deleteIfPresent(`/1.0/instances/${name}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    process.stdout.write(`package system test: ${Math.round((Date.now() - started) / 1000)} s\n`);
  }
}, 5 * minutes);

describe("the Debian package in a clean Debian 12 container", () => {
  it("installs with dpkg and no network, repository or npm, and op runs", () => {
    expect(inside("ip -o link | grep -v ' lo:' || true").stdout).toBe("");
    expect(inside("command -v npm node nodejs cc gcc || true").stdout).toBe("");
    ok(inside("dpkg -i /root/op.deb"));
    expect(ok(inside("op --version")).trim()).toMatch(/^op \d+\.\d+\.\d+$/);
    // The startup snapshot path (any command but --version) and the modules path.
    expect(ok(inside("op --help"))).toContain("completion");
    expect(ok(inside("OP_NO_SNAPSHOT=1 op --help"))).toContain("completion");
    // Compiled in, not read from the repository's schemas/.
    expect(JSON.parse(ok(inside("op schema"))).title).toBe("StateFile");
    expect(ok(inside("man -w op 2>/dev/null || ls /usr/share/man/man1/op.1.gz"))).toContain("op.1");
    expect(ok(inside("bash -n /usr/share/bash-completion/completions/op && echo parsed"))).toBe(
      "parsed\n",
    );
    // No unit is enabled by the install.
    expect(
      inside("systemctl is-enabled op-apply.service op-watch.service op-drift.timer").stdout,
    ).toBe("disabled\ndisabled\ndisabled\n");
  });

  it("ships a man page that man renders, with every command of op --help", () => {
    const tree = join(scratch, "extracted");
    ok(run("dpkg-deb", ["-x", deb, tree]));
    const page = run("man", ["-l", join(tree, "usr/share/man/man1/op.1.gz")]);
    expect(page.status, page.stderr).toBe(0);
    const commands = ok(inside("op --help"))
      .split("\nCommands:\n")[1]
      ?.split("\n\n")[0]
      ?.split("\n")
      // A command's line is indented by two; its wrapped description, further.
      .filter((line) => /^ {2}\S/.test(line))
      .map((line) => line.trim().split(/\s+/)[0])
      .filter((command) => command !== undefined && command !== "" && command !== "help");
    expect(commands).toEqual(expect.arrayContaining(["apply", "ledger", "completion"]));
    for (const command of commands ?? []) expect(page.stdout).toContain(`op ${command} `);
    expect(page.stdout).toContain("op ledger verify");
    expect(page.stdout).toContain("OP_LEDGER_KEY");
  });

  it("validates the shipped state file and the commented example", () => {
    expect(ok(inside("op validate /etc/op/state.json"))).toContain("is valid");
    expect(ok(inside("op validate /usr/share/doc/op/examples/state.yaml"))).toContain(
      "is valid (plugins: network, lxc, nftables)",
    );
  });

  it("runs op doctor: what op needs is found; Incus and Open vSwitch, absent, only reported", () => {
    const doctor = JSON.parse(ok(inside("op doctor --json"))) as {
      format_version: string;
      ok: boolean;
      checks: { name: string; ok: boolean; required: boolean }[];
    };
    expect(doctor.format_version).toBe("1.0");
    expect(doctor.ok).toBe(true);
    const { checks } = doctor;
    const okOf = new Map(checks.map((check) => [check.name, check.ok]));
    expect(okOf.get("nft")).toBe(true);
    expect(okOf.get("ip")).toBe(true);
    expect(checks.filter((check) => check.required && !check.ok)).toEqual([]);
    expect(okOf.get("Incus (socket and API)")).toBe(false);
    expect(okOf.get("Open vSwitch (OVSDB socket)")).toBe(false);
  });

  it("applies a network and nftables file in the container's own namespaces", () => {
    writeFileSync(join(scratch, "state.json"), stateFile);
    ok(
      run("incus", [
        "file",
        "push",
        "--quiet",
        join(scratch, "state.json"),
        `${name}/etc/op/state.json`,
      ]),
    );
    ok(inside("op apply /etc/op/state.json"));
    expect(bridgeAddresses()).toEqual(["198.18.77.1"]);
    expect(ok(inside(`nft list table inet ${table}`))).toContain("198.19.0.13");
    ok(inside("op apply /etc/op/state.json --check"));
    ok(inside("op ledger verify"));
  });

  it("brings the network back through the boot unit, which leaves Incus's section alone", () => {
    // The lxc section cannot be applied here (no Incus), as at boot before incus.service.
    const withLxc = JSON.parse(stateFile) as { plugins: Record<string, unknown> };
    withLxc.plugins.lxc = { containers: [{ id: "101", image: "images:debian/12" }] };
    writeFileSync(join(scratch, "state.json"), JSON.stringify(withLxc));
    ok(
      run("incus", [
        "file",
        "push",
        "--quiet",
        join(scratch, "state.json"),
        `${name}/etc/op/state.json`,
      ]),
    );
    expect(inside("op apply /etc/op/state.json --check").status).not.toBe(0);
    ok(inside(`ip link del ${bridge} && nft delete table inet ${table}`));
    expect(bridgeAddresses()).toEqual([]);
    ok(inside("systemctl start op-apply.service"));
    expect(bridgeAddresses()).toEqual(["198.18.77.1"]);
    ok(inside(`nft list table inet ${table}`));
    expect(inside("systemctl is-active op-apply.service").stdout.trim()).toBe("active");
  });

  it("runs op-drift.service as /etc/default/op says: check, apply, or a refused mode", () => {
    writeFileSync(join(scratch, "net.json"), stateFile);
    ok(
      run("incus", [
        "file",
        "push",
        "--quiet",
        join(scratch, "net.json"),
        `${name}/etc/op/net.json`,
      ]),
    );
    const mode = (drift: string, metrics = "") =>
      ok(
        inside(
          `printf 'STATE_FILE=/etc/op/net.json\\nDRIFT_MODE=${drift}\\nMETRICS_FILE=${metrics}\\n' > /etc/default/op`,
        ),
      );
    const drift = () => {
      const started = inside("systemctl start op-drift.service");
      const status = ok(inside("systemctl show -P ExecMainStatus op-drift.service")).trim();
      return { started: started.status, status };
    };
    mode("check");
    expect(drift()).toEqual({ started: 0, status: "0" });
    ok(inside(`nft delete table inet ${table}`));
    // Drift found: the unit fails with op's exit 2, and nothing is corrected.
    expect(drift()).toMatchObject({ status: "2" });
    expect(drift().started).not.toBe(0);
    expect(inside(`nft list table inet ${table}`).status).not.toBe(0);
    mode("apply", "/root/op.prom");
    expect(drift()).toEqual({ started: 0, status: "0" });
    ok(inside(`nft list table inet ${table}`));
    // The metrics op-drift was told to write, with this run counted.
    expect(ok(inside("cat /root/op.prom"))).toMatch(/^op_runs_total\{mode="apply"\} [1-9]/m);
    mode("fix-it");
    expect(drift()).toMatchObject({ status: "64" });
    expect(ok(inside("journalctl -u op-drift.service -n 5 --no-pager"))).toContain(
      "DRIFT_MODE=fix-it in /etc/default/op: must be check or apply",
    );
    mode("check");
  });

  it("has units that systemd-analyze verifies", () => {
    const verified = inside(
      "cd /lib/systemd/system && systemd-analyze verify --man=no op-apply.service op-drift.service op-drift.timer op-watch.service",
    );
    expect(verified.status, verified.stderr).toBe(0);
    // Warnings (an unknown key, a missing binary) do not change its exit code: none wanted.
    expect(verified.stderr).toBe("");
  });

  it("upgrades to a newer version keeping the ledger, its key and the edited state file", () => {
    const records = () => ok(inside("op ledger log --json"));
    const before = records();
    // One JSON record per line.
    expect(
      before
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line)).length,
    ).toBeGreaterThan(0);
    const key = ok(inside("sha256sum /etc/op/ledger.key"));
    const upgrade = rebuiltAs(deb, "99.0.0-1");
    ok(run("incus", ["file", "push", "--quiet", upgrade, `${name}/root/op-new.deb`]));
    ok(inside("dpkg -i /root/op-new.deb"));
    expect(ok(inside("dpkg-query -W op"))).toBe("op\t99.0.0-1\n");
    expect(records()).toBe(before);
    expect(ok(inside("sha256sum /etc/op/ledger.key"))).toBe(key);
    expect(ok(inside("cat /etc/default/op"))).toBe(
      "STATE_FILE=/etc/op/net.json\nDRIFT_MODE=check\nMETRICS_FILE=\n",
    );
    expect(ok(inside("cat /etc/op/state.json"))).toBe(
      readFileSync(join(scratch, "state.json"), "utf8"),
    );
    ok(inside("op ledger verify"));
    ok(inside("op apply /etc/op/state.json --check --plugin network --plugin nftables"));
  });

  it("purges the program, its conffiles and the status, but keeps the ledger and its key", () => {
    ok(inside("test -f /var/lib/op/status.json"));
    const purged = inside("dpkg --purge op");
    expect(purged.status, purged.stderr).toBe(0);
    expect(purged.stderr).toContain("purge keeps the ledger");
    expect(inside("command -v op || echo gone").stdout.trim()).toBe("gone");
    expect(inside("ls /etc/op /var/lib/op").stdout.split(/\s+/)).toEqual(
      expect.arrayContaining(["ledger.key", "ledger"]),
    );
    expect(inside("test -e /etc/op/state.json || echo gone").stdout.trim()).toBe("gone");
    expect(inside("test -e /var/lib/op/status.json || echo gone").stdout.trim()).toBe("gone");
  });
});
