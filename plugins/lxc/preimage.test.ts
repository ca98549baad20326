/**
 * The lxc plugin's pre-images (preimage.ts), on a hand-written host: the section written for a
 * run's containers validates, plans nothing against the host it was taken from (it is that
 * host), deletes what the run creates with its veths named for the network plugin, and refuses
 * a container the run deletes or replaces (the other kinds: preimage-objects.test.ts).
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { OpError } from "../../src/errors.js";
import { validate_lxc } from "../../src/generated/validators.js";
import { blobDirectory } from "../../src/ledger/blobs.js";
import type { Ctx } from "../../src/plugin.js";
import { diffLxc } from "./diff.js";
import { liveContainer, planOf, quietCtx } from "./lxc.testing.js";
import { lxcImage, lxcScope } from "./preimage.js";
import { prepareLxc } from "./prepare.js";
import type { LxcAction, LxcLive, LxcSection } from "./types.js";
import { containerVeths } from "./veths.js";

const before: LxcLive = {
  bridges: { oprbA: "linux", oprbB: "linux" },
  aliases: { "op-test/busybox": "f00d" },
  containers: [
    liveContainer("ct101", {
      id: "101",
      config: {
        "user.op.managed": "true",
        "user.op.id": "101",
        "user.op.image": "op-test/busybox",
        "limits.memory": "128MiB",
      },
      devices: {
        eth0: {
          type: "nic",
          nictype: "bridged",
          parent: "oprbA",
          host_name: "vi101",
          name: "eth0",
        },
      },
    }),
  ],
};

const changed: LxcSection = {
  containers: [
    { id: 101, image: "op-test/busybox", bridge: "oprbB", limits: { memory: 256 } },
    { id: 102, image: "op-test/busybox", bridge: "oprbA" },
  ],
};

describe("lxc pre-images", () => {
  it("write the containers as they were, and the created one absent with its veth", async () => {
    const actions = (await planOf(changed, before)) as LxcAction[];
    expect(actions.map((a) => `${a.kind} ${a.id}`).sort()).toEqual([
      "create ct102",
      "modify ct101",
    ]);
    const image = await lxcImage(lxcScope(actions), before, quietCtx);
    expect(image.refused).toEqual([]);
    const section = image.section as LxcSection;
    expect(validate_lxc(section), JSON.stringify(validate_lxc.errors)).toBe(true);
    expect(section.containers?.[1]).toEqual({
      id: 102,
      name: "ct102",
      ensure: "absent",
      nics: [{ type: "bridged", bridge: "oprbA", host_name: "vi102" }],
    });
    // The network plugin keeps the veth of the container to delete on its bridge till then.
    expect(containerVeths(section)).toContainEqual({ veth: "vi102", bridge: "oprbA" });
    // Against the host it was taken from, the pre-image changes nothing.
    expect(await planOf(section, before)).toEqual([]);
  });

  it("refuse a container the run deletes or replaces, beside a profile it creates", async () => {
    const gone: LxcAction = {
      kind: "delete",
      plugin: "lxc",
      resource: "container",
      id: "ct101",
      before: {
        container: before.containers[0] as never,
        unprotect: false,
        stopTimeout: 10,
        removeSources: [],
      },
      reason: "absent",
    };
    const profile = {
      kind: "create",
      plugin: "lxc",
      resource: "profile",
      id: "web",
      after: {},
      reason: "new",
    } as unknown as LxcAction;
    const image = await lxcImage(lxcScope([gone, profile]), before, quietCtx);
    expect(image.refused).toEqual([
      'container ct101: the run deletes or replaces it, and its disk would not come back (its entry can say "rollback": "snapshot")',
    ]);
    expect(image.section).toEqual({ profiles: [{ name: "web", ensure: "absent" }] });
  });

  it("back up a container deleted with rollback: snapshot, only while the pre-image is taken", async () => {
    const calls: string[] = [];
    const incus = {
      request: async (method: string, path: string) => void calls.push(`${method} ${path}`),
      downloadBackup: async (instance: string, backup: string, file: string) =>
        void calls.push(`download ${instance} ${backup.replace(/[0-9a-f]{8}$/, "X")} to ${file}`),
      etag: async (path: string) => {
        calls.push(`etag ${path}`);
        return "e".repeat(64);
      },
    };
    const ctx = { ...quietCtx, incus } as unknown as Ctx;
    const keep = {
      file: async (fill: (path: string) => Promise<void>) => {
        await fill("/kept");
        return "ab".repeat(32);
      },
    };
    const [gone] = (await planOf(
      {
        containers: [{ id: 101, image: "op-test/busybox", ensure: "absent", rollback: "snapshot" }],
      },
      before,
    )) as LxcAction[];
    expect(gone).toMatchObject({ kind: "delete", before: { snapshot: true } });
    const scope = lxcScope([gone as LxcAction]);

    const pre = await lxcImage(scope, before, ctx, keep);
    expect(pre.refused).toEqual([]);
    const [spec] = (pre.section as LxcSection).containers ?? [];
    expect(spec).toMatchObject({ id: 101, image: "op-test/busybox", backup: "ab".repeat(32) });
    expect(validate_lxc(pre.section), JSON.stringify(validate_lxc.errors)).toBe(true);
    expect(calls.map((call) => call.replace(/op-rollback-[0-9a-f]{8}/, "op-rollback-X"))).toEqual([
      "POST /1.0/instances/ct101/backups",
      "download ct101 op-rollback-X to /kept",
      "DELETE /1.0/instances/ct101/backups/op-rollback-X",
      "etag /1.0/instances/ct101",
    ]);
    expect(pre.marks).toEqual({ "container ct101 ETag": "e".repeat(64) });

    // A post-image (no keep) describes the host as it is and backs nothing up.
    calls.length = 0;
    const post = await lxcImage(scope, before, ctx);
    expect((post.section as LxcSection).containers?.[0]?.backup).toBeUndefined();
    expect(calls).toEqual(["etag /1.0/instances/ct101"]);
  });

  it("plan an undo's backup entry as an import, a replace of another container, then nothing", async () => {
    const hash = "cd".repeat(32);
    const root = mkdtempSync(join(tmpdir(), "op-lxc-backup-"));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const ledgerDir = join(root, "ledger");
    mkdirSync(blobDirectory(ledgerDir));
    writeFileSync(join(blobDirectory(ledgerDir), hash), "a backup");
    const ctx = { ...quietCtx, settings: { ledgerDir } } as unknown as Ctx;
    const plan = async (live: LxcLive, backup?: string) =>
      diffLxc(
        await prepareLxc(
          {
            containers: [
              { id: 101, image: "op-test/busybox", running: false, ...(backup ? { backup } : {}) },
            ],
          },
          live,
          ctx,
        ),
        live,
      );
    const words = (actions: readonly LxcAction[]) => actions.map((a) => `${a.kind} ${a.reason}`);
    expect(words(await plan({ ...before, containers: [] }, hash))).toEqual([
      `create new container from backup ${hash.slice(0, 12)}`,
    ]);
    expect(words(await plan(before, hash))).toEqual([
      `delete restored from backup ${hash.slice(0, 12)}: replaced (delete + import)`,
      `create restored from backup ${hash.slice(0, 12)}: replaced (delete + import)`,
    ]);
    const restored = liveContainer("ct101", {
      id: "101",
      config: {
        "user.op.managed": "true",
        "user.op.id": "101",
        "user.op.image": "op-test/busybox",
        "user.op.backup": hash,
      },
    });
    const after = { ...before, containers: [restored] };
    // Restored once: the mark matches, and a file without `backup` leaves the mark alone.
    expect(await plan(after, hash)).toEqual([]);
    expect(await plan(after)).toEqual([]);
    // A backup that is not in the store is refused at its JSON path.
    const missing = await prepareLxc(
      { containers: [{ id: 101, backup: "ef".repeat(32) }] },
      before,
      ctx,
    ).catch((error: unknown) => (error as OpError).details);
    expect(missing).toEqual([
      expect.stringMatching(
        /^\/plugins\/lxc\/containers\/0\/backup: backup (ef)+ is not in op's image store/,
      ),
    ]);
  });
});
