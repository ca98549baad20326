/**
 * op ledger prune-images through the built binary, in a namespace of its own: after three
 * changing runs, `--keep 1` removes the two older runs' pre- and post-images and records it;
 * `op rollback` of a pruned run then refuses, naming the run and the prune, while the kept run
 * is still undone; the chain still verifies. A run awaiting `op confirm` keeps its pre-image
 * even with `--keep 0`.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "./support/cli.js";
import { createNetns, type TestNetns } from "./support/netns.js";

let sandbox: CliSandbox;
let netns: TestNetns;

beforeEach(() => {
  sandbox = createCliSandbox();
  netns = createNetns("prune", "oprf");
});

afterEach(() => {
  // A watcher a failed test left behind is this test's own process: it is ended by its pid.
  const marker = `${sandbox.env.OP_LEDGER}.confirm`;
  if (existsSync(marker)) {
    const { watcher } = JSON.parse(readFileSync(marker, "utf8")) as { watcher?: number };
    if (watcher !== undefined) {
      try {
        process.kill(watcher, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  netns.remove();
  sandbox.cleanup();
});

function op(args: string[]): string {
  const result = sandbox.op(args, { netns: netns.name });
  if (result.status !== 0)
    throw new Error(`op ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** Applies a file that declares these veths; returns the run. */
function apply(names: string[], ...flags: string[]): string {
  const file = join(sandbox.dir, "state.json");
  const interfaces = names.map((name) => ({ name, type: "veth", veth: { peer: `${name}p` } }));
  writeFileSync(file, JSON.stringify({ version: 1, plugins: { network: { interfaces } } }));
  return (JSON.parse(op(["apply", file, "--json", ...flags])) as { run: string }).run;
}

const imagesDir = () => `${sandbox.env.OP_LEDGER}.images`;
const stored = () => readdirSync(imagesDir()).sort();
const linkNames = () =>
  (JSON.parse(netns.run("ip", ["-j", "link", "show"])) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith("oprf-"))
    .sort();

interface Pruned {
  keep: number;
  kept: string[];
  pruned: string[];
  removed: { blob: string; what: string; run?: string }[];
  refs: string[];
  record?: number;
}

describe("op ledger prune-images", () => {
  it("keeps the newest runs undoable, and op rollback of a pruned run says it was pruned", () => {
    const first = apply(["oprf-a"]);
    const second = apply(["oprf-a", "oprf-b"]);
    const third = apply(["oprf-a", "oprf-b", "oprf-c"]);
    // Each run: a pre-image blob, a post-image blob and its name.
    expect(stored()).toHaveLength(9);

    const dry = JSON.parse(op(["ledger", "prune-images", "--keep", "1", "--dry-run", "--json"]));
    expect((dry as Pruned).pruned).toEqual([first, second]);
    expect(stored()).toHaveLength(9);

    const out = JSON.parse(op(["ledger", "prune-images", "--keep", "1", "--json"])) as Pruned;
    expect(out.kept).toEqual([third]);
    expect(out.pruned).toEqual([first, second]);
    expect(out.refs).toEqual([`post-${first}`, `post-${second}`].sort());
    expect(out.removed.map((b) => `${b.what} ${b.run}`).sort()).toEqual(
      [
        `post-image ${first}`,
        `post-image ${second}`,
        `pre-image ${first}`,
        `pre-image ${second}`,
      ].sort(),
    );
    expect(out.record).toBeGreaterThan(0);
    expect(stored()).toHaveLength(3);
    expect(stored()).toContain(`post-${third}.ref`);
    for (const b of out.removed) expect(stored()).not.toContain(b.blob);

    // The chain still names the pruned hashes and still verifies, with the prune recorded.
    op(["ledger", "verify"]);
    expect(op(["ledger", "log"])).toMatch(/ok\s+delete\s+op pre-images/);

    const refused = sandbox.op(["rollback", first.slice(0, 8)], { netns: netns.name });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`run ${first} cannot be undone`);
    expect(refused.stderr).toContain(
      `was pruned by op ledger prune-images (ledger record ${out.record}`,
    );
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap", "oprf-b", "oprf-bp", "oprf-c", "oprf-cp"]);

    // The kept run is still undone from its pre-image.
    op(["rollback", third]);
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap", "oprf-b", "oprf-bp"]);

    // Nothing more to prune of those runs: a second prune with the same keep records nothing.
    const again = JSON.parse(op(["ledger", "prune-images", "--keep", "2", "--json"])) as Pruned;
    expect(again.pruned).toEqual([]);
    expect(again.record).toBeUndefined();
  });

  it("keeps the pre-image of a run that awaits op confirm, however old, and refuses --keep 0", () => {
    const first = apply(["oprf-a"]);
    const armed = apply(["oprf-a", "oprf-b"], "--confirm", "600s");
    const last = apply(["oprf-a", "oprf-b", "oprf-c"]);
    const out = JSON.parse(op(["ledger", "prune-images", "--keep", "1", "--json"])) as Pruned;
    expect(out.kept).toEqual([armed, last]);
    expect(out.pruned).toEqual([first]);
    const text = op(["ledger", "prune-images", "--keep", "1"]);
    expect(text).toContain(`and run ${armed} that awaits op confirm`);
    // Its undo still has what it needs: op rollback of the armed run works.
    op(["rollback", armed]);
    expect(linkNames()).toEqual(["oprf-a", "oprf-ap", "oprf-c", "oprf-cp"]);

    const zero = sandbox.op(["ledger", "prune-images", "--keep", "0"], { netns: netns.name });
    expect(zero.status).toBe(64);
    expect(zero.stderr).toContain("--keep");
  });
});
