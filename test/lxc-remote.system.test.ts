/**
 * op manages containers on a second, real incusd reached over HTTPS (plugins.lxc.remote): a
 * one-member cluster in a network namespace of its own (test/support/incus-remote.ts), with a
 * client certificate made and trusted by the test. The host's own incusd is only checked to
 * be untouched.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lxcPlugin } from "../plugins/lxc/index.js";
import { remoteOf } from "../plugins/lxc/remote.js";
import { createIncusClient } from "../src/incus.js";
import { createCliSandbox } from "./support/cli.js";
import { quietCtx } from "./support/engine.js";
import {
  type JoinedMember,
  joinMember,
  type RemoteIncus,
  startRemoteIncus,
} from "./support/incus-remote.js";
import { instance, plan, reconcile, testCtx, uid } from "./support/lxc.js";

let remote: RemoteIncus;

beforeAll(() => {
  remote = startRemoteIncus();
}, 180_000);

afterAll(() => {
  remote?.stop();
}, 120_000);

/** The section's remote: a URL where nothing listens first, then the daemon's. */
function remoteSpec(): Record<string, unknown> {
  const unused = remote.url.replace(":8443", ":8444");
  return {
    urls: [unused, remote.url],
    client_cert: remote.clientCert,
    client_key: remote.clientKey,
    server_cert: remote.serverCert,
  };
}

/** What the remote's own socket says of an instance: status and member, or undefined. */
function onRemote(name: string): { status: string; location: string } | undefined {
  const rows = JSON.parse(remote.incus(["list", name, "--format", "json"])) as {
    name: string;
    status: string;
    location: string;
  }[];
  const row = rows.find((r) => r.name === name);
  return row === undefined ? undefined : { status: row.status, location: row.location };
}

describe("lxc on a remote Incus cluster over HTTPS", () => {
  it("creates a container on a member group, records where it went, sees no drift, then deletes it", async () => {
    const name = `opir-${uid()}`;
    const ctx = testCtx();
    const entry = {
      id: name,
      image: "op-test/busybox",
      stop_timeout: 5,
      target: `@${remote.group}`,
      files: [{ path: "/etc/opir-motd", content: "written over HTTPS\n", mode: "0640" }],
    };
    const created = await reconcile({ remote: remoteSpec(), containers: [entry] }, ctx);
    expect(created.errors).toEqual(new Map());
    expect(created.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`create ${name}`]);
    expect(created.remaining).toEqual([]);
    // The member Incus placed it on is in the create's ok record.
    const ok = created.records.find((r) => r.target === name && r.status === "ok");
    expect(ok?.changes).toEqual({ location: remote.member });
    expect(onRemote(name)).toEqual({ status: "Running", location: remote.member });
    // Made on the remote, not on this host's incusd; its declared file went through the API.
    expect(await instance(name)).toBeUndefined();
    expect(remote.incus(["file", "pull", `${name}/etc/opir-motd`, "-"])).toBe(
      "written over HTTPS\n",
    );

    // op exec's websockets go over the same pinned TLS transport as the REST calls.
    const client = createIncusClient(remoteOf(remoteSpec() as Parameters<typeof remoteOf>[0]));
    try {
      const stdout = new PassThrough();
      const chunks: Buffer[] = [];
      stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
      const result = await lxcPlugin.instances?.exec(
        {
          instance: name,
          command: ["cat", "/etc/opir-motd"],
          any: false,
          environment: {},
          stdio: { stdin: Readable.from([]), stdout, stderr: new PassThrough() },
        },
        quietCtx({ incus: client }),
      );
      expect(result?.exitCode).toBe(0);
      expect(Buffer.concat(chunks).toString()).toBe("written over HTTPS\n");
    } finally {
      client.close();
    }

    // Queried again (a new run): converged; the location is observed, not drift.
    expect(await plan({ remote: remoteSpec(), containers: [entry] }, testCtx())).toEqual([]);

    // A change made on the remote by hand is drift, and op puts it back over HTTPS.
    remote.incus(["config", "set", name, "user.opir.drift=1"]);
    const fixed = await reconcile({ remote: remoteSpec(), containers: [entry] }, testCtx());
    expect(fixed.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`modify ${name}`]);
    expect(fixed.remaining).toEqual([]);
    expect(remote.incus(["config", "get", name, "user.opir.drift"]).trim()).toBe("");

    const gone = await reconcile(
      { remote: remoteSpec(), containers: [{ ...entry, ensure: "absent" }] },
      testCtx(),
    );
    expect(gone.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`delete ${name}`]);
    expect(gone.errors).toEqual(new Map());
    expect(onRemote(name)).toBeUndefined();
  }, 180_000);

  it("creates on a named member; a target on another member is a move, held without allow_move", async () => {
    const name = `opir-${uid()}`;
    const entry = { id: name, image: "op-test/busybox", stop_timeout: 5, target: remote.member };
    const created = await reconcile({ remote: remoteSpec(), containers: [entry] }, testCtx());
    expect(created.errors).toEqual(new Map());
    expect(onRemote(name)?.location).toBe(remote.member);
    try {
      const moved = await plan(
        { remote: remoteSpec(), containers: [{ ...entry, target: "opir-elsewhere" }] },
        testCtx(),
      );
      expect(moved).toHaveLength(1);
      expect(moved[0]?.kind).toBe("modify");
      expect(moved[0]?.reason).toContain(`move from member ${remote.member} to opir-elsewhere`);
      expect(moved[0]?.held).toContain('"allow_move": true');
    } finally {
      remote.incus(["delete", "--force", name]);
    }
  }, 180_000);

  it("op apply, plan and rollback (the CLI) read the file's remote; the signed ledger has the location", () => {
    const sandbox = createCliSandbox();
    const name = `opir-${uid()}`;
    try {
      const file = join(sandbox.dir, "state.json");
      const state = (ensure: string) => ({
        version: 1,
        plugins: {
          lxc: {
            remote: remoteSpec(),
            containers: [{ id: name, image: "op-test/busybox", stop_timeout: 5, ensure }],
          },
        },
      });
      writeFileSync(file, JSON.stringify(state("present")));
      const applied = sandbox.op(["apply", file]);
      expect(applied.stderr).toBe("");
      expect(applied.status).toBe(0);
      expect(onRemote(name)).toEqual({ status: "Running", location: remote.member });
      const records = sandbox
        .op(["ledger", "export"])
        .stdout.split("\n")
        .filter(Boolean)
        .map(
          (line) =>
            JSON.parse(line) as {
              run?: string;
              target?: string;
              status?: string;
              changes?: unknown;
            },
        );
      const ok = records.find((r) => r.target === name && r.status === "ok");
      expect(ok?.changes).toEqual({ location: remote.member });
      expect(sandbox.op(["ledger", "verify"]).status).toBe(0);
      const planned = sandbox.op(["plan", file]);
      expect(planned.status).toBe(0);
      expect(planned.stdout).not.toContain(name);
      // The run's pre-image names the remote: its undo deletes the container there.
      const undone = sandbox.op(["rollback", String(ok?.run)]);
      expect(undone.stderr).not.toContain("error");
      expect(undone.status).toBe(0);
      expect(onRemote(name)).toBeUndefined();
      // The file, applied again and then made absent, leaves nothing behind either way.
      expect(sandbox.op(["apply", file]).status).toBe(0);
      writeFileSync(file, JSON.stringify(state("absent")));
      expect(sandbox.op(["apply", file]).status).toBe(0);
      expect(onRemote(name)).toBeUndefined();
    } finally {
      sandbox.cleanup();
    }
  }, 180_000);

  it("names every URL that failed, and refuses a server whose certificate is not the pinned one", async () => {
    const spec = { ...remoteSpec(), server_cert: undefined, trust: "ab".repeat(32) };
    const failure = await plan({ remote: spec, containers: [] }, testCtx()).catch(
      (error: unknown) => error as { message: string; details?: unknown[] },
    );
    expect(String((failure as { message: string }).message)).toContain(
      "no URL of the remote Incus could be used",
    );
    const details = JSON.stringify((failure as { details?: unknown[] }).details);
    expect(details).toContain(`${remote.url.replace(":8443", ":8444")}: ECONNREFUSED`);
    expect(details).toContain(`${remote.url}: its certificate's SHA-256 fingerprint is`);
  }, 60_000);
});

describe("lxc on a two-member Incus cluster (two daemons, two namespaces)", () => {
  let second: JoinedMember;

  beforeAll(() => {
    second = joinMember(remote);
  }, 180_000);

  afterAll(() => {
    remote?.clear();
    second?.stop();
  }, 120_000);

  it("moves a running container to its target member with allow_move, and is converged after", async () => {
    const name = `opir-${uid()}`;
    const entry = { id: name, image: "op-test/busybox", stop_timeout: 5, target: remote.member };
    const created = await reconcile({ remote: remoteSpec(), containers: [entry] }, testCtx());
    expect(created.errors).toEqual(new Map());
    expect(onRemote(name)).toEqual({ status: "Running", location: remote.member });

    const moving = { ...entry, target: second.member, allow_move: true };
    const moved = await reconcile({ remote: remoteSpec(), containers: [moving] }, testCtx());
    expect(moved.errors).toEqual(new Map());
    expect(moved.actions.map((a) => a.reason)).toEqual([
      `move from member ${remote.member} to ${second.member}`,
    ]);
    expect(moved.remaining).toEqual([]);
    expect(onRemote(name)).toEqual({ status: "Running", location: second.member });
    expect(await plan({ remote: remoteSpec(), containers: [moving] }, testCtx())).toEqual([]);
  }, 240_000);

  it("creates a managed network on every member (pending definitions, then the cluster-wide create), finishing one left pending", async () => {
    // Inside the daemons' namespaces: its bridge, dnsmasq and nftables table are theirs.
    const name = `opirn${uid().slice(0, 4)}`;
    const network = {
      name,
      ipv4_address: "198.18.216.1/24",
      ipv4_nat: false,
      ipv6_address: "none",
    };
    // As a run that stopped between the two steps leaves it: pending on the first member.
    remote.incus(["network", "create", name, "--target", remote.member]);
    const created = await reconcile({ remote: remoteSpec(), networks: [network] }, testCtx());
    try {
      expect(created.errors).toEqual(new Map());
      expect(created.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`create ${name}`]);
      expect(created.remaining).toEqual([]);
      // Created (not pending) on each member: both took the definition.
      for (const member of [remote.member, second.member]) {
        const state = JSON.parse(
          remote.incus(["query", `/1.0/networks/${name}?target=${member}`]),
        ) as { status: string; locations: string[] };
        expect(state.status).toBe("Created");
        expect(state.locations.sort()).toEqual([remote.member, second.member].sort());
      }
    } finally {
      remote.incus(["network", "delete", name]);
    }
  }, 180_000);
});
