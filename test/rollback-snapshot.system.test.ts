/**
 * `rollback: snapshot` on the real Incus (prefix oprl-): a container with a file written
 * inside it is deleted by a run whose entry says `rollback: snapshot`, then `op rollback RUN`
 * brings it back from the backup the pre-image kept: the file is there and its config, devices
 * and profiles are what they were. The same for a replace (a change of image alias). Without
 * the field, such a run's undo is still refused, naming why.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import {
  createSharedProject,
  type Instance,
  incus,
  instance,
  isNotFound,
  removeContainers,
  removeProject,
  sh,
  testId,
  testImage,
  uid,
} from "./support/lxc.js";

let sandbox: CliSandbox;
const tag = uid();
const names: string[] = [];
const otherAlias = `oprl-${tag}/busybox`;
const project = `oprl${tag}`;

beforeAll(() => {
  sandbox = createCliSandbox();
  // A second alias of the test image: a container moved to it is replaced (delete + create).
  const fingerprint = sh("incus", ["image", "info", testImage])
    .split("\n")
    .find((line) => line.startsWith("Fingerprint:"))
    ?.split(":")[1]
    ?.trim();
  sh("incus", ["image", "alias", "create", otherAlias, fingerprint ?? "missing"]);
  createSharedProject(project);
});

afterAll(async () => {
  await removeContainers(names);
  await removeProject(project);
  sh("incus", ["image", "alias", "delete", otherAlias]);
  sandbox.cleanup();
});

function entry(fields: Record<string, unknown> = {}) {
  const name = `oprl-${tag}-${names.length}`;
  names.push(name);
  return {
    id: testId(),
    name,
    image: testImage,
    stop_timeout: 10,
    limits: { memory: 96 },
    config: { "user.oprl": "kept" },
    rollback: "snapshot",
    ...fields,
  };
}

function apply(file: string, containers: object[]): string {
  const path = join(sandbox.dir, file);
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { lxc: { containers } } }));
  const result = sandbox.op(["apply", path, "--json"]);
  if (result.status !== 0) throw new Error(`op apply ${file}: ${result.stderr}`);
  const out = JSON.parse(result.stdout) as { run: string; converged: boolean };
  expect(out.converged).toBe(true);
  return out.run;
}

function rollback(run: string): void {
  const result = sandbox.op(["rollback", run, "--json"]);
  if (result.status !== 0) throw new Error(`op rollback ${run}: ${result.stderr}`);
  expect((JSON.parse(result.stdout) as { converged: boolean }).converged).toBe(true);
}

/** What must come back: config without Incus's volatile keys and op's restore mark, devices, profiles. */
function shape(found: Instance | undefined) {
  if (found === undefined) return undefined;
  const config = Object.fromEntries(
    Object.entries(found.config).filter(
      ([key]) => !key.startsWith("volatile.") && key !== "user.op.backup",
    ),
  );
  return {
    status: found.status,
    config,
    devices: found.devices,
    profiles: (found as Instance & { profiles?: string[] }).profiles,
  };
}

const marker = "/root/oprl-marker";
const markerText = `written by the oprl test ${tag}\n`;

async function readMarker(name: string): Promise<string | undefined> {
  return (await incus.readFile(name, marker))?.toString("utf8");
}

describe("op rollback of a container deleted or replaced with rollback: snapshot", () => {
  it("brings a deleted container back with its disk and its config", async () => {
    const ct = entry({ running: true });
    apply("made.json", [ct]);
    await incus.pushFile(ct.name, marker, markerText);
    const before = shape(await instance(ct.name));
    expect(before?.status).toBe("Running");

    const run = apply("deleted.json", [{ ...ct, ensure: "absent" }]);
    expect(await instance(ct.name)).toBeUndefined();

    rollback(run);
    expect(shape(await instance(ct.name))).toEqual(before);
    expect(await readMarker(ct.name)).toBe(markerText);
    // The file it was made from plans nothing against it: it is that container again.
    const again = sandbox.op(["plan", join(sandbox.dir, "made.json"), "--json"]);
    expect(again.status, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { actions: unknown[] }).actions).toEqual([]);
  });

  it("brings a replaced container back from its backup, not the new image's", async () => {
    const ct = entry({ running: false });
    apply("replaced-made.json", [ct]);
    await incus.pushFile(ct.name, marker, markerText);
    const before = shape(await instance(ct.name));

    const run = apply("replaced.json", [{ ...ct, image: otherAlias }]);
    expect((await instance(ct.name))?.config["user.op.image"]).toBe(otherAlias);
    expect(await readMarker(ct.name)).toBeUndefined();
    // A prune that keeps only this run keeps the backup its pre-image names.
    const pruned = sandbox.op(["ledger", "prune-images", "--keep", "1"]);
    expect(pruned.status, pruned.stderr).toBe(0);

    rollback(run);
    expect(shape(await instance(ct.name))).toEqual(before);
    expect(await readMarker(ct.name)).toBe(markerText);
  });

  it("brings back a container deleted in another project, into that project", async () => {
    const ct = { ...entry({ running: false }), project };
    const inProject = () =>
      incus
        .request<Instance>("GET", `/1.0/instances/${ct.name}?project=${project}`)
        .catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)));
    apply("project-made.json", [ct]);
    await incus.pushFile(ct.name, marker, markerText, { project });
    const before = shape(await inProject());
    expect(before).toBeDefined();

    const run = apply("project-deleted.json", [{ ...ct, ensure: "absent" }]);
    expect(await inProject()).toBeUndefined();

    rollback(run);
    expect(shape(await inProject())).toEqual(before);
    expect((await incus.readFile(ct.name, marker, { project }))?.toString("utf8")).toBe(markerText);
    expect(await instance(ct.name)).toBeUndefined();
  });

  it("still refuses to undo a delete without it, naming the field", () => {
    const { rollback: _, ...plain } = entry({ running: false });
    apply("plain-made.json", [plain]);
    const run = apply("plain-deleted.json", [{ ...plain, ensure: "absent" }]);
    const refused = sandbox.op(["rollback", run]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(
      `container ${plain.name}: the run deletes or replaces it, and its disk would not come back (its entry can say "rollback": "snapshot")`,
    );
  });
});
