/**
 * op rollback of a run that changed Incus objects and a kernel key, on the real Incus and a
 * real kernel (prefix oprl-): op runs inside a test network namespace, so its sysctl key is the
 * namespace's, not the host's; Incus is reached over its socket all the same. The run changes
 * a key and the description of a project op created, creates a profile and a volume, and sets
 * net.ipv4.ip_forward; the undo puts the project and the key back exactly as they were
 * and removes the profile and the volume. A run that deletes a volume cannot be undone (its
 * content), and says so.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { deleteIfPresent, incus, isNotFound, uid } from "./support/lxc.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;
const tag = uid();
const project = `oprl${tag}`;
const profile = `oprl-${tag}-p`;
const volume = `oprl-${tag}-v`;
const forward = "net.ipv4.ip_forward";

beforeAll(() => {
  sandbox = createCliSandbox();
  netns = createNetns("objects", "oprl");
});

afterAll(async () => {
  await deleteIfPresent(`/1.0/profiles/${profile}`);
  await deleteIfPresent(`/1.0/storage-pools/default/volumes/custom/${volume}`);
  await deleteIfPresent(`/1.0/projects/${project}`);
  netns.remove();
  sandbox.cleanup();
});

function op(args: string[]) {
  const result = sandbox.op(args, { netns: netns.name });
  if (result.status !== 0)
    throw new Error(`op ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result;
}

function apply(name: string, plugins: object): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins }));
  const out = JSON.parse(op(["apply", path, "--json"]).stdout) as {
    run: string;
    converged: boolean;
  };
  expect(out.converged).toBe(true);
  return out.run;
}

/** An Incus object as its API gives it (what op compares), or undefined when there is none. */
async function object(path: string): Promise<Record<string, unknown> | undefined> {
  const got = await incus
    .request<Record<string, unknown>>("GET", path)
    .catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)));
  if (got === undefined) return undefined;
  const { config, description, devices } = got;
  return { config, description, devices };
}

const projectNow = () => object(`/1.0/projects/${project}`);
const profileNow = () => object(`/1.0/profiles/${profile}`);
const volumeNow = () => object(`/1.0/storage-pools/default/volumes/custom/${volume}`);
const forwardNow = () => netns.run("sysctl", ["-n", forward]).trim();

describe("op rollback of Incus objects and sysctl keys", () => {
  it("puts a project's key and a sysctl key back and removes the profile and volume made", async () => {
    apply("first.json", {
      lxc: { projects: [{ name: project, config: { "user.tier": "one" } }] },
    });
    const before = {
      project: await projectNow(),
      profile: await profileNow(),
      volume: await volumeNow(),
      forward: forwardNow(),
    };
    expect(before.project?.config).toMatchObject({ "user.tier": "one" });
    expect(before.profile).toBeUndefined();
    expect(before.volume).toBeUndefined();
    const changed = before.forward === "1" ? "0" : "1";

    const run = apply("second.json", {
      lxc: {
        projects: [{ name: project, description: "oprl run", config: { "user.tier": "two" } }],
        profiles: [{ name: profile, config: { "limits.memory": "64MiB" } }],
        volumes: [{ pool: "default", name: volume, config: { "user.oprl": "made" } }],
      },
      sysctl: { settings: { [forward]: Number(changed) } },
    });
    expect((await projectNow())?.config).toMatchObject({ "user.tier": "two" });
    expect((await projectNow())?.description).toBe("oprl run");
    expect(await profileNow()).toBeDefined();
    expect(await volumeNow()).toBeDefined();
    expect(forwardNow()).toBe(changed);

    const undo = JSON.parse(op(["rollback", run, "--json"]).stdout) as { converged: boolean };
    expect(undo.converged).toBe(true);
    expect({
      project: await projectNow(),
      profile: await profileNow(),
      volume: await volumeNow(),
      forward: forwardNow(),
    }).toEqual(before);
  });

  it("refuses to undo a run that deleted a volume, naming why", async () => {
    const gone = `${volume}-gone`;
    try {
      apply("made.json", { lxc: { volumes: [{ pool: "default", name: gone }] } });
      const run = apply("gone.json", {
        lxc: { volumes: [{ pool: "default", name: gone, ensure: "absent" }] },
      });
      const refused = sandbox.op(["rollback", run], { netns: netns.name });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain(
        `volume default/${gone}: the run deletes it, and its content would not come back`,
      );
      expect(await object(`/1.0/storage-pools/default/volumes/custom/${gone}`)).toBeUndefined();
    } finally {
      await deleteIfPresent(`/1.0/storage-pools/default/volumes/custom/${gone}`);
    }
  });
});
