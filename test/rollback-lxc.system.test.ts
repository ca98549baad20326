/**
 * op rollback of a run that changed containers, on the real Incus (host namespace, prefix
 * oprb-): the run created a container, changed another's memory limit and re-plugged it onto
 * another bridge; the undo restores the limit and the bridge and removes the created
 * container. It is refused when the container was changed by hand since, unless --force:
 * also by a change only Incus's ETag shows (a device op's format leaves out).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { instance, removeContainers, sh, testId, testImage, uid } from "./support/lxc.js";

let sandbox: CliSandbox;
const tag = uid();
const bridgeA = `oprb-${tag}a`;
const bridgeB = `oprb-${tag}b`;
const kept = { id: testId(), name: `oprb-${tag}-x` };
const created = { id: testId(), name: `oprb-${tag}-y` };
const marked = { id: testId(), name: `oprl-${tag}-e` };

beforeAll(() => {
  sandbox = createCliSandbox();
});

afterAll(async () => {
  await removeContainers([kept.name, created.name, marked.name]);
  for (const bridge of [bridgeA, bridgeB]) {
    try {
      sh("ip", ["link", "del", bridge]);
    } catch {
      // not made, or already gone
    }
  }
  sandbox.cleanup();
});

const bridges = {
  interfaces: [
    { name: bridgeA, type: "linux-bridge" },
    { name: bridgeB, type: "linux-bridge" },
  ],
};
const container = (entry: { id: number; name: string }, bridge: string, memory: number) => ({
  ...entry,
  image: testImage,
  stop_timeout: 10,
  bridge,
  limits: { memory },
});

function op(args: string[]) {
  const result = sandbox.op(args);
  if (result.status !== 0)
    throw new Error(`op ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result;
}

function apply(name: string, lxc: unknown): string {
  const path = join(sandbox.dir, name);
  writeFileSync(path, JSON.stringify({ version: 1, plugins: { network: bridges, lxc } }));
  const out = JSON.parse(op(["apply", path, "--json"]).stdout) as {
    run: string;
    converged: boolean;
  };
  expect(out.converged).toBe(true);
  return out.run;
}

/** The container's memory limit and the bridge of its eth0, as Incus has them. */
async function shape(name: string): Promise<{ memory?: string; parent?: string } | undefined> {
  const found = await instance(name);
  if (found === undefined) return undefined;
  return {
    memory: found.config["limits.memory"],
    parent: (found.devices.eth0 as { parent?: string } | undefined)?.parent,
  };
}

describe("op rollback of containers", () => {
  it("restores a container's limit and bridge and removes the one the run created", async () => {
    apply("first.json", { containers: [container(kept, bridgeA, 128)] });
    expect(await shape(kept.name)).toEqual({ memory: "128MiB", parent: bridgeA });

    const run = apply("second.json", {
      containers: [container(kept, bridgeB, 256), container(created, bridgeA, 128)],
    });
    expect(await shape(kept.name)).toEqual({ memory: "256MiB", parent: bridgeB });
    expect(await shape(created.name)).toBeDefined();

    // Changed by hand since the run: refused, and nothing changed.
    sh("incus", ["config", "set", kept.name, "limits.memory=300MiB"]);
    const refused = sandbox.op(["rollback", run]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("of its resources changed since it ran");
    expect(refused.stderr).toContain(`lxc /containers/${kept.name}/config/limits.memory`);
    expect(await shape(created.name)).toBeDefined();

    op(["rollback", run, "--force"]);
    expect(await shape(kept.name)).toEqual({ memory: "128MiB", parent: bridgeA });
    expect(await shape(created.name)).toBeUndefined();
  });

  it("refuses when only the container's ETag changed since, and --force undoes it", async () => {
    apply("etag-first.json", { containers: [container(marked, bridgeA, 128)] });
    // Untouched since, the running container's ETag is the post-image's: undone unforced.
    const untouched = apply("etag-second.json", { containers: [container(marked, bridgeA, 256)] });
    op(["rollback", untouched]);
    expect((await shape(marked.name))?.memory).toBe("128MiB");

    const run = apply("etag-second.json", { containers: [container(marked, bridgeA, 256)] });
    // A device op's format leaves out: the post-image's section cannot show it, the ETag does.
    sh("incus", ["config", "device", "add", marked.name, "oprl-mark", "none"]);
    const refused = sandbox.op(["rollback", run]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("refusing to undo run");
    expect(refused.stderr).toContain("1 of its resources changed since it ran");
    expect(refused.stderr).toMatch(
      new RegExp(`lxc container ${marked.name} ETag: [0-9a-f]{12} then, [0-9a-f]{12} now`),
    );
    expect((await shape(marked.name))?.memory).toBe("256MiB");

    op(["rollback", run, "--force"]);
    expect(await shape(marked.name)).toEqual({ memory: "128MiB", parent: bridgeA });
    expect((await instance(marked.name))?.devices["oprl-mark"]).toBeUndefined();
  });
});
