/**
 * Images op builds from a system tarball, on the real Incus daemon. The input is the Debian
 * rootfs tarball scripts/setup-cloud-image.sh caches (debootstrap minbase plus systemd, built
 * once per machine): a plain system tarball, root at `.`. op adapts it (networkd, its container
 * generator, hostname/hosts templates), imports it, and a container started from it must show
 * the instance's name in /etc/hostname and networkd enabled. Everything lives in a project of
 * the test's own (prefix optb-) with its own image store, removed at the end.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIncusClient, type IncusClient } from "../src/incus.js";
import { incus, plan, reconcile, removeProject, sh, testCtx, testId, uid } from "./support/lxc.js";

const cached = "/var/cache/op-test/debian-cloud/rootfs.tar.gz";
const project = `optb-${uid()}`;
let dir: string;
let client: IncusClient;
const profiles: string[] = [];

beforeAll(async () => {
  if (!existsSync(cached))
    throw new Error(
      `${cached} is missing: scripts/setup.sh --tests builds it (setup-cloud-image.sh)`,
    );
  dir = mkdtempSync(join(tmpdir(), "optb-"));
  await incus.request("POST", "/1.0/projects", {
    name: project,
    config: {
      "features.images": "true",
      "features.profiles": "false",
      "features.storage.volumes": "false",
    },
  });
  client = createIncusClient(incus.socketPath, { project });
});

afterAll(async () => {
  await removeProject(project);
  for (const profile of profiles) await incus.request("DELETE", `/1.0/profiles/${profile}`);
  client?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

interface Image {
  fingerprint: string;
  profiles: string[];
  properties: Record<string, string> | null;
}

const aliasTarget = async (alias: string) =>
  (
    await client.request<{ target: string }>(
      "GET",
      `/1.0/images/aliases/${encodeURIComponent(alias)}`,
    )
  ).target;

/** A command's output inside a container of the test's project. */
const inside = (name: string, ...command: string[]) =>
  sh("incus", ["exec", "--project", project, name, "--", ...command]).trim();

const adapt = {
  networkd: true,
  lxc_generator: true,
  templates: {
    "/etc/hostname": "{{ container.name }}\n",
    "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 {{ container.name }}\n",
  },
  properties: { os: "debian", release: "12", description: "op tarball test" },
};

describe("images built from a system tarball", () => {
  it("builds, imports, starts a container with the templates rendered and networkd on; re-apply is a no-op; a changed tarball re-imports", async () => {
    const ctx = testCtx(undefined, project);
    const alias = "optb/debian";
    const name = `optb-${uid()}`;
    // A profile of the default project (the test's project has none of its own).
    const profile = `optb-${uid()}`;
    await incus.request("POST", "/1.0/profiles", { name: profile, description: "optb" });
    profiles.push(profile);
    const entry = { alias, tarball: cached, adapt: { ...adapt, profiles: ["default", profile] } };
    const container = { id: testId(), name, image: alias, running: true, stop_timeout: 5 };

    const first = await reconcile({ images: [entry], containers: [container] }, ctx);
    expect(first.errors).toEqual(new Map());
    expect(first.remaining).toEqual([]);
    const fingerprint = await aliasTarget(alias);
    const image = await client.request<Image>("GET", `/1.0/images/${fingerprint}`);
    expect(image.profiles).toEqual(["default", profile]);
    expect(image.properties).toMatchObject({
      "user.op.managed": "true",
      "user.op.source-sha256": sha256(cached),
      os: "debian",
      release: "12",
    });
    // The ledger's intent names the fingerprint and the source's SHA-256 before the import.
    const intent = first.records.find(
      (r) => r.target === `image ${alias}` && r.status === "intent",
    );
    expect(intent?.changes).toMatchObject({
      after: { fingerprint, sourceSha256: sha256(cached), tarball: cached },
    });

    // Rendered by Incus from the templates op put in the metadata.
    expect(inside(name, "cat", "/etc/hostname")).toBe(name);
    expect(inside(name, "cat", "/etc/hosts")).toContain(`127.0.1.1 ${name}`);
    expect(inside(name, "systemctl", "is-enabled", "systemd-networkd")).toBe("enabled");
    // The boot ends with no failed unit (is-system-running waits for the boot to finish).
    expect(inside(name, "sh", "-c", "systemctl is-system-running --wait || true")).toBe("running");
    expect(inside(name, "systemctl", "is-active", "systemd-networkd")).toBe("active");
    // The generator ran at boot, in a container, and masked a unit it names.
    expect(inside(name, "readlink", "/run/systemd/generator.early/sys-kernel-debug.mount")).toBe(
      "/dev/null",
    );

    expect(await plan({ images: [entry], containers: [container] }, ctx)).toEqual([]);

    // The same tree plus one file, now a plain tar: another SHA-256, so another image.
    const changed = join(dir, "rootfs-changed.tar");
    sh("sh", ["-c", `gzip -dc '${cached}' > '${changed}'`]);
    mkdirSync(join(dir, "extra", "etc"), { recursive: true });
    writeFileSync(join(dir, "extra", "etc", "optb-marker"), "changed\n");
    sh("tar", ["-C", join(dir, "extra"), "--numeric-owner", "-rf", changed, "./etc/optb-marker"]);
    const moved = { ...entry, tarball: changed };
    const second = await reconcile({ images: [moved], containers: [container] }, ctx);
    expect(second.actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`modify image ${alias}`]);
    expect(second.actions[0]?.reason).toMatch(
      /^tarball or adaptation changed: re-import built from /,
    );
    expect(second.errors).toEqual(new Map());
    const refingerprint = await aliasTarget(alias);
    expect(refingerprint).not.toBe(fingerprint);
    const changes = second.records.find((r) => r.status === "intent")?.changes;
    expect(changes).toEqual([
      { path: "fingerprint", before: fingerprint, after: refingerprint },
      { path: "source_sha256", before: sha256(cached), after: sha256(changed) },
    ]);
    const reimported = await client.request<Image>("GET", `/1.0/images/${refingerprint}`);
    expect(reimported.properties?.["user.op.source-sha256"]).toBe(sha256(changed));
    expect(await plan({ images: [moved], containers: [container] }, ctx)).toEqual([]);
  }, 600_000);

  it("refuses an alias that names an image op did not build, with the alias's JSON path", async () => {
    const ctx = testCtx(undefined, project);
    // A tiny tarball is enough: the refusal comes before anything changes.
    const tree = join(dir, "tiny");
    mkdirSync(join(tree, "etc"), { recursive: true });
    writeFileSync(join(tree, "etc", "os-release"), "ID=optb\n");
    const tiny = join(dir, "tiny.tar");
    sh("tar", ["-C", tree, "-cf", tiny, "."]);
    const foreign = "optb/foreign";
    // Imported by hand, as someone else would: no user.op.managed property.
    const meta = join(dir, "foreign-meta");
    mkdirSync(meta, { recursive: true });
    writeFileSync(
      join(meta, "metadata.yaml"),
      `architecture: ${sh("uname", ["-m"]).trim()}\ncreation_date: 1\nproperties:\n  description: optb foreign\n`,
    );
    sh("tar", ["-C", meta, "-cf", join(dir, "foreign-meta.tar"), "metadata.yaml"]);
    sh("incus", [
      "image",
      "import",
      "--project",
      project,
      join(dir, "foreign-meta.tar"),
      tiny,
      "--alias",
      foreign,
    ]);
    const refused = await plan({ images: [{ alias: foreign, tarball: tiny }] }, ctx).catch(
      (error: unknown) => error as { details?: string[] },
    );
    expect((refused as { details?: string[] }).details).toEqual([
      expect.stringMatching(
        /^\/plugins\/lxc\/images\/0\/alias: alias "optb\/foreign" already names image [0-9a-f]{12}, which op did not build/,
      ),
    ]);
  }, 120_000);
});
