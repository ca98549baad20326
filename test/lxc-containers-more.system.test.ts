/**
 * System tests of the container fields of issue 14 on the real Incus daemon: a container in a
 * project of the test's own (and one of the same name in the default project), snapshot
 * schedules and named snapshots with hand-made drift, boot priorities, description and
 * ephemeral changed in place, and a change Incus takes only at start: held without leave,
 * applied with a restart with it. Every container and project here is the test's own and is
 * removed after; no test here prunes (prune sees every project of the host).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hostName } from "../plugins/lxc/host.js";
import { createIncusClient } from "../src/incus.js";
import type { Ctx } from "../src/plugin.js";
import { createCliSandbox } from "./support/cli.js";
import {
  createProject,
  inContainer,
  incus,
  instance,
  plan,
  reconcile,
  removeContainers,
  removeProject,
  sh,
  startedAt,
  testCtx,
  testEntry,
  testId,
} from "./support/lxc.js";

const containers: string[] = [];
const projects: string[] = [];
afterAll(async () => {
  try {
    await removeContainers(containers);
  } finally {
    for (const project of projects) await removeProject(project);
  }
});

const entry = (fields: Record<string, unknown> = {}) => testEntry(containers, fields);

async function snapshotsOf(name: string): Promise<string[]> {
  const urls = await incus.request<string[]>("GET", `/1.0/instances/${name}/snapshots`);
  return urls.map((url) => (url.split("?")[0] ?? url).split("/").pop() as string).sort();
}

const kinds = (actions: { kind: string; id: string }[]) => actions.map((a) => `${a.kind} ${a.id}`);

describe("containers in projects", () => {
  it("creates the same name in a project and in default, re-applies as a no-op, deletes each", async () => {
    const project = await createProject();
    projects.push(project);
    const scoped = createIncusClient(incus.socketPath, { project });
    try {
      // Both stopped: two running containers of one name on one managed network would
      // clash in its DNS (Incus refuses the second start), whatever their projects.
      const inDefault = entry({ running: false });
      const inProject = { ...inDefault, id: testId(), project };
      const runner = { ...entry({ project }), id: testId() };
      const section = { containers: [inDefault, inProject, runner] };

      const run = await reconcile(section);
      expect(kinds(run.actions).sort()).toEqual(
        [
          `create ${inDefault.name}`,
          `create ${project}/${inDefault.name}`,
          `create ${project}/${runner.name}`,
        ].sort(),
      );
      expect(run.errors).toEqual(new Map());
      expect(run.remaining).toEqual([]);
      expect((await instance(inDefault.name))?.status).toBe("Stopped");
      expect((await instance(inDefault.name, scoped))?.status).toBe("Stopped");
      expect((await instance(runner.name, scoped))?.status).toBe("Running");
      // Incus names a project's container PROJECT_NAME on the host: what host.ts reads.
      const sys = testCtx().host.sys;
      expect(sys.containerPid(hostName({ project, name: runner.name }))).toBeGreaterThan(1);
      expect(sys.containerPid(runner.name)).toBeUndefined();

      expect(await plan(section)).toEqual([]);

      const gone = await reconcile({
        containers: [
          inDefault,
          { ...inProject, ensure: "absent" },
          { ...runner, ensure: "absent" },
        ],
      });
      expect(kinds(gone.actions).sort()).toEqual(
        [`delete ${project}/${inDefault.name}`, `delete ${project}/${runner.name}`].sort(),
      );
      expect(gone.remaining).toEqual([]);
      expect(await instance(inDefault.name, scoped)).toBeUndefined();
      expect((await instance(inDefault.name))?.status).toBe("Stopped");
    } finally {
      scoped.close();
    }
  });
});

describe("snapshots", () => {
  it("sets the schedule, fixes it when unset by hand, takes named snapshots and keeps the rest", async () => {
    const ct = entry({
      running: false,
      snapshots: { schedule: "0 3 * * *", expiry: "7d", keep: [{ name: "base" }] },
    });
    const section = { containers: [ct] };
    const first = await reconcile(section);
    expect(first.errors).toEqual(new Map());
    expect(first.remaining).toEqual([]);
    const config = (await instance(ct.name))?.config ?? {};
    expect([config["snapshots.schedule"], config["snapshots.expiry"]]).toEqual(["0 3 * * *", "7d"]);
    expect(await snapshotsOf(ct.name)).toEqual(["base"]);

    sh("incus", ["config", "unset", ct.name, "snapshots.schedule"]);
    const drift = await plan(section);
    expect(kinds(drift)).toEqual([`modify ${ct.name}`]);
    expect(drift[0]?.reason).toBe("add config.snapshots.schedule");
    expect((await reconcile(section)).remaining).toEqual([]);
    expect((await instance(ct.name))?.config["snapshots.schedule"]).toBe("0 3 * * *");

    // A named snapshot deleted by hand is taken again; others made by hand are left alone.
    sh("incus", ["snapshot", "delete", ct.name, "base"]);
    sh("incus", ["snapshot", "create", ct.name, "extra"]);
    sh("incus", ["snapshot", "create", ct.name, "snap7"]);
    const missing = await plan(section);
    expect(missing.map((a) => a.reason)).toEqual(["take snapshot base"]);
    expect((await reconcile(section)).remaining).toEqual([]);
    expect(await snapshotsOf(ct.name)).toEqual(["base", "extra", "snap7"]);

    // With prune: the undeclared one goes, the one named as the schedule names them stays.
    const pruning = {
      containers: [{ ...ct, snapshots: { ...(ct.snapshots as object), prune: true } }],
    };
    const pruned = await reconcile(pruning);
    expect(pruned.actions.map((a) => a.reason)).toEqual([
      "config.user.op.snapshots base → base;prune, delete snapshot extra",
    ]);
    expect(pruned.remaining).toEqual([]);
    expect(await snapshotsOf(ct.name)).toEqual(["base", "snap7"]);
  });

  it("refuses a schedule Incus would refuse before any change, with its JSON path", async () => {
    const ct = entry({ snapshots: { schedule: "0 3 * *" } });
    await expect(reconcile({ containers: [ct] })).rejects.toMatchObject({
      details: [
        '/plugins/lxc/containers/0/snapshots/schedule: not a schedule Incus accepts: "0 3 * *": a schedule has 5 fields separated by single spaces: minute hour day-of-month month day-of-week (several schedules are joined by ", ")',
      ],
    });
    expect(await instance(ct.name)).toBeUndefined();
  });
});

describe("boot, description and ephemeral", () => {
  it("sets boot priorities and fixes them when changed by hand; changes description and ephemeral in place", async () => {
    const ct = entry({
      description: "optest front",
      boot: { autostart: true, priority: 10, stop_priority: 5 },
    });
    const section = { containers: [ct] };
    expect((await reconcile(section)).remaining).toEqual([]);
    const created = await incus.request<{
      description: string;
      ephemeral: boolean;
      config: Record<string, string>;
    }>("GET", `/1.0/instances/${ct.name}`);
    expect(created.description).toBe("optest front");
    expect([
      created.config["boot.autostart"],
      created.config["boot.autostart.priority"],
      created.config["boot.stop.priority"],
    ]).toEqual(["true", "10", "5"]);

    sh("incus", ["config", "set", ct.name, "boot.autostart.priority", "3"]);
    const drift = await plan(section);
    expect(drift.map((a) => a.reason)).toEqual(["config.boot.autostart.priority 3 → 10"]);
    expect((await reconcile(section)).remaining).toEqual([]);

    const before = await startedAt(ct.name);
    const changed = { containers: [{ ...ct, description: "optest back", ephemeral: true }] };
    const run = await reconcile(changed);
    expect(run.actions.map((a) => a.reason)).toEqual([
      "description optest front → optest back, make ephemeral",
    ]);
    expect(run.remaining).toEqual([]);
    const after = await incus.request<{ description: string; ephemeral: boolean }>(
      "GET",
      `/1.0/instances/${ct.name}`,
    );
    expect([after.description, after.ephemeral]).toEqual(["optest back", true]);
    expect(await startedAt(ct.name)).toBe(before);
    // Made persistent again, so the clean-up's stop does not delete it under its feet.
    expect((await reconcile({ containers: [{ ...ct, ephemeral: false }] })).remaining).toEqual([]);
    expect((await instance(ct.name)) as unknown).toMatchObject({ ephemeral: false });
  });
});

describe("changes Incus takes only at start", () => {
  const openFiles = (name: string) =>
    /Max open files\s+(\d+)/.exec(inContainer(name, "cat /proc/1/limits"))?.[1];

  it("holds the change on a running container without leave, restarts it with leave", async () => {
    const ct = entry();
    expect((await reconcile({ containers: [ct] })).remaining).toEqual([]);
    const started = await startedAt(ct.name);
    const limited = { containers: [{ ...ct, config: { "limits.kernel.nofile": "2048" } }] };

    const held = await reconcile(limited);
    expect(kinds(held.actions)).toEqual([`modify ${ct.name}`]);
    expect(held.actions[0]?.held).toMatch(/^restart required for limits.kernel.nofile: held/);
    // Not applied, not recorded, and still different: the run is not converged.
    expect(held.records).toEqual([]);
    expect(held.remaining.map((a) => a.held)).toEqual([held.actions[0]?.held]);
    expect((await instance(ct.name))?.config["limits.kernel.nofile"]).toBeUndefined();
    expect(await startedAt(ct.name)).toBe(started);

    // `op plan` shows what `op apply` with or without --allow-restart would do.
    const sandbox = createCliSandbox();
    try {
      const file = join(sandbox.dir, "state.json");
      writeFileSync(file, JSON.stringify({ version: 1, plugins: { lxc: limited } }));
      const planned = (args: string[]) => {
        const result = sandbox.op(["--json", "plan", file, ...args]);
        expect(result.stderr).toBe("");
        return (
          JSON.parse(result.stdout) as {
            actions: { held?: string; restart: boolean; replace: boolean }[];
          }
        ).actions;
      };
      // The machine contract says a restart is needed either way, and that nothing is replaced.
      expect(planned([])[0]).toMatchObject({
        held: expect.stringMatching(/^restart required/),
        restart: true,
        replace: false,
      });
      const withLeave = planned(["--allow-restart"])[0];
      expect(withLeave?.held).toBeUndefined();
      expect(withLeave).toMatchObject({ restart: true, replace: false });
    } finally {
      sandbox.cleanup();
    }

    const allowed: Ctx = { ...testCtx(), options: { allowUplink: false, allowRestart: true } };
    const restarted = await reconcile(limited, allowed);
    expect(restarted.actions[0]?.reason).toBe(
      "add config.limits.kernel.nofile, graceful restart for limits.kernel.nofile (restart required)",
    );
    expect(restarted.errors).toEqual(new Map());
    expect(restarted.remaining).toEqual([]);
    expect(await startedAt(ct.name)).not.toBe(started);
    expect(openFiles(ct.name)).toBe("2048");

    // The file's own leave does the same without the flag.
    const again = await startedAt(ct.name);
    const byFile = {
      containers: [{ ...ct, restart: "allowed", config: { "limits.kernel.nofile": "4096" } }],
    };
    const run = await reconcile(byFile);
    expect(run.remaining).toEqual([]);
    expect(await startedAt(ct.name)).not.toBe(again);
    expect(openFiles(ct.name)).toBe("4096");
  });
});
