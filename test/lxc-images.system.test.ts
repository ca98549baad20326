/**
 * Images on the real Incus daemon: op marks what it imports, `ensure: absent` removes an alias
 * and the image with it only when nothing keeps it, `prune_images` removes op's images that
 * left the file and nothing uses. Every image here is built by the test (a busybox rootfs from
 * scripts/setup-incus.sh with a metadata.yaml of its own, so each has its own fingerprint) and
 * lives in a project of the test's own with its own image store, so prune sees nothing else;
 * a client made for that project sees it as the file's `default`, so its instances go by name.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIncusClient, type IncusClient } from "../src/incus.js";
import {
  createProject,
  incus,
  isNotFound,
  plan,
  reconcile,
  removeProject,
  sh,
  testCtx,
  testId,
  uid,
} from "./support/lxc.js";

let dir: string;
let rootfs: string;
const projects: string[] = [];
const clients: IncusClient[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "optest-images-"));
  sh("bash", [join(import.meta.dirname, "..", "scripts", "setup-incus.sh"), "build-image", dir]);
  rootfs = join(dir, "rootfs.tar.gz");
});

afterAll(async () => {
  for (const project of projects) await removeProject(project);
  for (const client of clients) client.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A project of the test's own with its own image store, and a client scoped to it. */
async function ownStore(): Promise<{ project: string; client: IncusClient }> {
  const project = await createProject(true);
  projects.push(project);
  const client = createIncusClient(incus.socketPath, { project });
  clients.push(client);
  return { project, client };
}

/** An image entry whose metadata names `tag` (so its fingerprint is its own), and that fingerprint. */
function variant(tag: string): {
  entry: { alias: string; metadata: string; rootfs: string };
  fingerprint: string;
} {
  const meta = join(dir, tag);
  mkdirSync(meta, { recursive: true });
  writeFileSync(
    join(meta, "metadata.yaml"),
    `architecture: ${sh("uname", ["-m"]).trim()}\ncreation_date: ${Math.floor(Date.now() / 1000)}\nproperties:\n  description: op images test ${tag}\n`,
  );
  const metadata = join(meta, "metadata.tar.gz");
  sh("tar", ["-C", meta, "-czf", metadata, "metadata.yaml"]);
  const fingerprint = createHash("sha256")
    .update(readFileSync(metadata))
    .update(readFileSync(rootfs))
    .digest("hex");
  return { entry: { alias: `optest/${tag}`, metadata, rootfs }, fingerprint };
}

interface Image {
  fingerprint: string;
  aliases: { name: string }[] | null;
  properties: Record<string, string> | null;
}

async function imageOf(client: IncusClient, fingerprint: string): Promise<Image | undefined> {
  return client.request<Image>("GET", `/1.0/images/${fingerprint}`).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
}

const container = (image: string, fields: Record<string, unknown> = {}) => {
  const id = testId();
  return { id, name: `optest-${id}`, image, running: false, stop_timeout: 5, ...fields };
};

const lines = (actions: { kind: string; id: string; reason: string }[]) =>
  actions.map((a) => `${a.kind} ${a.id}: ${a.reason}`);

describe("images: ensure absent", () => {
  it("marks what it imports, deletes the image only after the container that used it", async () => {
    const { project, client } = await ownStore();
    const ctx = testCtx(undefined, project);
    const a = variant(`img-${uid()}`);
    const ct = container(a.entry.alias);
    const created = await reconcile({ images: [a.entry], containers: [ct] }, ctx);
    expect(created.errors).toEqual(new Map());
    expect((await imageOf(client, a.fingerprint))?.properties).toMatchObject({
      "user.op.managed": "true",
    });

    // The container stays in the file: the alias cannot go.
    const refused = await plan(
      { images: [{ alias: a.entry.alias, ensure: "absent" }], containers: [ct] },
      ctx,
    ).catch((error: unknown) => error as Error & { details?: string[] });
    expect((refused as { details?: string[] }).details).toEqual([
      `/plugins/lxc/containers/0: ${ct.name} is created from image "${a.entry.alias}", which /plugins/lxc/images/0 makes absent; give the container another image or drop "ensure": "absent"`,
    ]);
    expect(await imageOf(client, a.fingerprint)).toBeDefined();

    const gone = await reconcile(
      {
        images: [{ alias: a.entry.alias, ensure: "absent" }],
        containers: [{ ...ct, ensure: "absent" }],
      },
      ctx,
    );
    expect(lines(gone.actions)).toEqual([
      `delete ${ct.name}: ensure: absent`,
      `delete image ${a.entry.alias}: ensure: absent: delete image ${a.fingerprint.slice(0, 12)} imported by op (alias ${a.entry.alias}), once ${ct.name} is deleted`,
    ]);
    // It waits for that container's delete (by the delete's own id).
    expect(gone.actions[1]?.needs).toEqual([
      { plugin: "lxc", resource: "container", id: gone.actions[0]?.id },
    ]);
    expect(gone.errors).toEqual(new Map());
    expect(gone.remaining).toEqual([]);
    expect(await imageOf(client, a.fingerprint)).toBeUndefined();
    expect(await plan({ images: [{ alias: a.entry.alias, ensure: "absent" }] }, ctx)).toEqual([]);
  });

  it("removes only the alias while an instance the file does not name uses the image", async () => {
    const { project, client } = await ownStore();
    const ctx = testCtx(undefined, project);
    const a = variant(`img-${uid()}`);
    expect((await reconcile({ images: [a.entry] }, ctx)).errors).toEqual(new Map());
    const byHand = `optest-${uid()}`;
    sh("incus", ["init", a.entry.alias, byHand, "--project", project, "-q"]);

    const run = await reconcile({ images: [{ alias: a.entry.alias, ensure: "absent" }] }, ctx);
    expect(lines(run.actions)).toEqual([
      `delete image ${a.entry.alias}: ensure: absent: remove alias ${a.entry.alias}; image ${a.fingerprint.slice(0, 12)} kept (used by ${byHand})`,
    ]);
    expect(run.errors).toEqual(new Map());
    const kept = await imageOf(client, a.fingerprint);
    expect(kept?.aliases ?? []).toEqual([]);
    expect(kept?.properties?.["user.op.managed"]).toBe("true");
  });

  it("sees an instance of another project use an image of the default project's store", async () => {
    // Unscoped (the CLI's view): only the test's own alias is named, so nothing else is touched.
    const project = await createProject(false);
    projects.push(project);
    const a = variant(`img-${uid()}`);
    const imported = await reconcile({ images: [a.entry] });
    expect(imported.errors).toEqual(new Map());
    try {
      const elsewhere = `optest-${uid()}`;
      sh("incus", ["init", a.entry.alias, elsewhere, "--project", project, "-q"]);
      const run = await reconcile({ images: [{ alias: a.entry.alias, ensure: "absent" }] });
      expect(lines(run.actions)).toEqual([
        `delete image ${a.entry.alias}: ensure: absent: remove alias ${a.entry.alias}; image ${a.fingerprint.slice(0, 12)} kept (used by ${project}/${elsewhere})`,
      ]);
      expect(run.errors).toEqual(new Map());
      expect((await imageOf(incus, a.fingerprint))?.aliases ?? []).toEqual([]);
    } finally {
      await removeProject(project);
      projects.splice(projects.indexOf(project), 1);
      if ((await imageOf(incus, a.fingerprint)) !== undefined)
        await incus.request("DELETE", `/1.0/images/${a.fingerprint}`);
    }
  });

  it("refuses an alias op did not make, and changes nothing", async () => {
    const { project, client } = await ownStore();
    const ctx = testCtx(undefined, project);
    const a = variant(`img-${uid()}`);
    sh("incus", [
      "image",
      "import",
      a.entry.metadata,
      rootfs,
      "--alias",
      a.entry.alias,
      "--project",
      project,
      "-q",
    ]);
    const error = await reconcile(
      { images: [{ alias: a.entry.alias, ensure: "absent" }] },
      ctx,
    ).catch((e: unknown) => e as { details?: string[] });
    expect((error as { details?: string[] }).details).toEqual([
      `/plugins/lxc/images/0/alias: alias "${a.entry.alias}" is not op's (its image ${a.fingerprint.slice(0, 12)} has no user.op.managed property and the alias was not made by op); op removes only images it imported: remove it by hand (incus image alias delete ${a.entry.alias}) or drop this entry`,
    ]);
    expect((await imageOf(client, a.fingerprint))?.aliases).toEqual([
      expect.objectContaining({ name: a.entry.alias }),
    ]);
  });
});

describe("images: prune_images", () => {
  it("deletes op's images that left the file and nothing uses; keeps the rest", async () => {
    const { project, client } = await ownStore();
    const ctx = testCtx(undefined, project);
    const left = variant(`left-${uid()}`);
    const named = variant(`named-${uid()}`);
    const used = variant(`used-${uid()}`);
    const foreign = variant(`foreign-${uid()}`);
    const ct = container(named.entry.alias);
    const imported = await reconcile(
      { images: [left.entry, named.entry, used.entry], containers: [ct] },
      ctx,
    );
    expect(imported.errors).toEqual(new Map());
    const byHand = `optest-${uid()}`;
    sh("incus", ["init", used.entry.alias, byHand, "--project", project, "-q"]);
    sh("incus", [
      "image",
      "import",
      foreign.entry.metadata,
      rootfs,
      "--alias",
      foreign.entry.alias,
      "--project",
      project,
      "-q",
    ]);

    // Without the flag, images that left the file stay.
    expect(await plan({ containers: [ct] }, ctx)).toEqual([]);

    const run = await reconcile({ prune_images: true, containers: [ct] }, ctx);
    expect(lines(run.actions)).toEqual([
      `delete image ${left.entry.alias}: not in the file (prune_images): delete image ${left.fingerprint.slice(0, 12)} imported by op (alias ${left.entry.alias}), no instance uses it`,
    ]);
    expect(run.errors).toEqual(new Map());
    expect(await imageOf(client, left.fingerprint)).toBeUndefined();
    for (const keptImage of [named, used, foreign])
      expect(await imageOf(client, keptImage.fingerprint)).toBeDefined();
    expect(await plan({ prune_images: true, containers: [ct] }, ctx)).toEqual([]);
  });
});
