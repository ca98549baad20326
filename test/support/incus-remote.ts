/**
 * A second, real incusd for the remote and cluster tests: its own INCUS_DIR under /tmp
 * (`/tmp/opir-ID`: database, unix socket, run directory, logs), its own network namespace
 * (`opir-ID`, reached from the host over a veth pair `opirIDh`/`opirIDn` in 198.18.214.0/24),
 * its own `dir` storage pool under that directory, and no managed network (so no dnsmasq and
 * no nftables table of its own). It serves HTTPS on the namespace's address, is made a
 * one-member cluster with a member group, has the busybox test image, and trusts a client
 * certificate made here with openssl.
 *
 * What it still shares with the host's incusd: the kernel (cgroup tree, where its containers
 * are `lxc.payload.NAME` beside the host's: test names are prefixed `opir-`), the
 * /etc/subuid and /etc/subgid ranges (both map containers to the same host ids), the binaries,
 * /run/netns, and liblxc's lock directory /run/lxc/lock (one directory per INCUS_DIR, removed
 * with it). AppArmor is not enabled on this machine and lxcfs is not running; neither
 * daemon uses them here.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

const incusd = "/usr/libexec/incus/incusd";
const lxcLocks = "/run/lxc/lock";
const repo = join(import.meta.dirname, "..", "..");

export interface RemoteIncus {
  id: string;
  /** Its INCUS_DIR. */
  dir: string;
  netns: string;
  /** `https://ADDRESS:8443`. */
  url: string;
  /** The cluster member's name and its group. */
  member: string;
  group: string;
  /** op's client certificate and key (0600), and the cluster's certificate to pin. */
  clientCert: string;
  clientKey: string;
  serverCert: string;
  /** Runs the `incus` client against this daemon's own unix socket (test-side checks). */
  incus(args: string[]): string;
  /** Deletes every container it has (on any member of its cluster). */
  clear(): void;
  /** Stops its containers and the daemon, removes its directory, namespace and link. */
  stop(): void;
}

/** liblxc's lock directory of an INCUS_DIR, and its parent when nothing else is in it. */
function removeLocks(dir: string): void {
  const locks = join(lxcLocks, dir);
  rmSync(locks, { recursive: true, force: true });
  try {
    rmdirSync(dirname(locks));
  } catch {
    // Another daemon's locks are there (or it is gone already).
  }
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): string {
  return execFileSync(command, args, {
    encoding: "utf8",
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    ...(input === undefined ? {} : { input }),
    ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
  });
}

/** Starts the daemon; every step's failure stops what was started so far. */
export function startRemoteIncus(): RemoteIncus {
  const id = randomBytes(3).toString("hex");
  const netns = `opir-${id}`;
  const hostLink = `opir${id}h`;
  const nsLink = `opir${id}n`;
  // A /30 of 198.18.214.0/24 of its own: host .1, namespace .2.
  const base = randomInt(0, 64) * 4;
  const hostIp = `198.18.214.${base + 1}`;
  const ip = `198.18.214.${base + 2}`;
  const dir = `/tmp/opir-${id}`;
  const env = { INCUS_DIR: dir };
  let daemon: ChildProcess | undefined;
  const clear = () => {
    if (daemon === undefined || !existsSync(join(dir, "unix.socket"))) return;
    try {
      const names = run("incus", ["list", "--format", "csv", "-c", "n"], env)
        .split("\n")
        .filter(Boolean);
      for (const name of names) run("incus", ["delete", "--force", name], env);
    } catch {
      // The daemon may be the thing that failed; killing it below still ends its children.
    }
  };
  const stop = () => {
    // Containers first (their monitors outlive the daemon), then the daemon itself.
    clear();
    stopDaemon(daemon, dir);
    try {
      run("ip", ["netns", "delete", netns]);
    } catch {}
    try {
      run("ip", ["link", "delete", hostLink]);
    } catch {}
  };
  try {
    run("ip", ["netns", "add", netns]);
    run("ip", ["link", "add", hostLink, "type", "veth", "peer", "name", nsLink]);
    run("ip", ["link", "set", nsLink, "netns", netns]);
    run("ip", ["addr", "add", `${hostIp}/30`, "dev", hostLink]);
    run("ip", ["link", "set", hostLink, "up"]);
    run("ip", ["-n", netns, "addr", "add", `${ip}/30`, "dev", nsLink]);
    run("ip", ["-n", netns, "link", "set", nsLink, "up"]);
    run("ip", ["-n", netns, "link", "set", "lo", "up"]);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    daemon = spawnDaemon(netns, dir);
    run("incus", ["admin", "waitready", "--timeout", "60"], env);
    const member = `opir-m-${id}`;
    const group = `opir-g-${id}`;
    const incus = (args: string[]) => run("incus", args, env);
    incus(["config", "set", "core.https_address", `${ip}:8443`]);
    incus(["storage", "create", "default", "dir"]);
    incus(["profile", "device", "add", "default", "root", "disk", "path=/", "pool=default"]);
    incus(["cluster", "enable", member]);
    incus(["cluster", "group", "create", group]);
    incus(["cluster", "group", "assign", member, `${group},default`]);
    const image = join(dir, "image");
    run(join(repo, "scripts", "setup-incus.sh"), ["build-image", image]);
    incus([
      "image",
      "import",
      join(image, "metadata.tar.gz"),
      join(image, "rootfs.tar.gz"),
      "--alias",
      "op-test/busybox",
    ]);
    const clientCert = join(dir, "op-client.crt");
    const clientKey = join(dir, "op-client.key");
    run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:secp384r1",
      "-nodes",
      "-keyout",
      clientKey,
      "-out",
      clientCert,
      "-days",
      "2",
      "-subj",
      `/CN=op-test-${id}`,
    ]);
    chmodSync(clientKey, 0o600);
    incus(["config", "trust", "add-certificate", clientCert]);
    return {
      id,
      dir,
      netns,
      url: `https://${ip}:8443`,
      member,
      group,
      clientCert,
      clientKey,
      serverCert: join(dir, "cluster.crt"),
      incus,
      clear,
      stop,
    };
  } catch (error) {
    const log = logTail(dir);
    stop();
    throw new Error(`the second incusd did not start: ${String(error)}\n${log}`);
  }
}

/**
 * Ends a test daemon (SIGTERM, then SIGKILL after 10 s) and removes its directory and the
 * container locks liblxc keeps under /run/lxc/lock/LXCPATH, outside INCUS_DIR.
 */
function stopDaemon(daemon: ChildProcess | undefined, dir: string): void {
  if (daemon?.pid !== undefined && daemon.exitCode === null) {
    try {
      process.kill(daemon.pid, "SIGTERM");
      for (let i = 0; i < 100 && daemon.exitCode === null; i++) execFileSync("sleep", ["0.1"]);
      if (daemon.exitCode === null) process.kill(daemon.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  rmSync(dir, { recursive: true, force: true });
  removeLocks(dir);
}

/** The end of a test daemon's log, for the error when it did not come up. */
function logTail(dir: string): string {
  const log = join(dir, "incusd.log");
  return existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "";
}

/** incusd in the namespace, its own INCUS_DIR, logging into it; not waited for (detached). */
function spawnDaemon(netns: string, dir: string): ChildProcess {
  const daemon = spawn(
    "ip",
    ["netns", "exec", netns, incusd, "--group", "root", "--logfile", join(dir, "incusd.log")],
    { cwd: dir, env: { ...process.env, INCUS_DIR: dir }, stdio: "ignore" },
  );
  daemon.on("error", () => {});
  return daemon;
}

export interface JoinedMember {
  /** Its cluster member name. */
  member: string;
  /** Stops it (its containers deleted first), removes its directory, namespace and link. */
  stop(): void;
}

/**
 * A second member of `first`'s cluster: another incusd with its own INCUS_DIR in its own
 * namespace, linked to the first's namespace by a veth pair of 198.18.215.0/24, joined with a
 * token (`incus cluster add` on the first, `incus admin init --preseed` on it).
 */
export function joinMember(first: RemoteIncus): JoinedMember {
  const id = randomBytes(3).toString("hex");
  const netns = `opir-${id}`;
  const firstLink = `opir${id}a`;
  const nsLink = `opir${id}b`;
  const base = randomInt(0, 64) * 4;
  const firstIp = `198.18.215.${base + 1}`;
  const ip = `198.18.215.${base + 2}`;
  const dir = `/tmp/opir-${id}`;
  const env = { INCUS_DIR: dir };
  const member = `opir-m-${id}`;
  const firstAddress = new URL(first.url).hostname;
  let daemon: ChildProcess | undefined;
  const stop = () => {
    try {
      run("incus", ["cluster", "remove", "--force", "--yes", member], { INCUS_DIR: first.dir });
    } catch {}
    stopDaemon(daemon, dir);
    try {
      run("ip", ["netns", "delete", netns]);
    } catch {}
  };
  try {
    run("ip", ["netns", "add", netns]);
    run("ip", [
      "-n",
      first.netns,
      "link",
      "add",
      firstLink,
      "type",
      "veth",
      "peer",
      "name",
      nsLink,
    ]);
    run("ip", ["-n", first.netns, "link", "set", nsLink, "netns", netns]);
    run("ip", ["-n", first.netns, "addr", "add", `${firstIp}/30`, "dev", firstLink]);
    run("ip", ["-n", first.netns, "link", "set", firstLink, "up"]);
    run("ip", ["-n", netns, "addr", "add", `${ip}/30`, "dev", nsLink]);
    run("ip", ["-n", netns, "link", "set", nsLink, "up"]);
    run("ip", ["-n", netns, "link", "set", "lo", "up"]);
    // The first member's cluster address is on its host link: reached through its namespace.
    run("ip", ["-n", netns, "route", "add", `${firstAddress}/32`, "via", firstIp]);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    daemon = spawnDaemon(netns, dir);
    run("incus", ["admin", "waitready", "--timeout", "60"], env);
    const token = first.incus(["cluster", "add", member, "--quiet"]).trim();
    const preseed = [
      "cluster:",
      "  enabled: true",
      `  server_name: ${member}`,
      `  server_address: ${ip}:8443`,
      `  cluster_address: ${firstAddress}:8443`,
      `  cluster_token: ${token}`,
      "  member_config:",
      "  - entity: storage-pool",
      "    name: default",
      "    key: source",
      '    value: ""',
      "",
    ].join("\n");
    run("incus", ["admin", "init", "--preseed"], env, preseed);
    return { member, stop };
  } catch (error) {
    const log = logTail(dir);
    stop();
    throw new Error(`the second member did not join: ${String(error)}\n${log}`);
  }
}
