/**
 * Pre-images through the run (run.ts with in-memory plugins, ledger and blob store): the image
 * record is written before the first intent and names the stored blob by its hash; a verified
 * run keeps a post-image; the undo document, what cannot be restored, and how a change made
 * since the run is named.
 */
import { describe, expect, it } from "vitest";
import { memoryLedger, quietCtx, type RecordedStep } from "../../test/support/engine.js";
import { type BlobStore, sha256Hex } from "../ledger/blobs.js";
import type { Plugin } from "../plugin.js";
import { createRegistry } from "../registry.js";
import {
  changedSince,
  type ImageReference,
  postName,
  type RunImage,
  readImage,
  undoDocument,
  unrestorable,
} from "./images.js";
import { reconcile } from "./run.js";
import { createAction } from "./testing.js";

function memoryStore(): BlobStore & { blobs: Map<string, string>; names: Map<string, string> } {
  const blobs = new Map<string, string>();
  const names = new Map<string, string>();
  return {
    blobs,
    names,
    put(text) {
      const hash = sha256Hex(text);
      blobs.set(hash, text);
      return hash;
    },
    get: (hash) => blobs.get(hash),
    name: (name, hash) => void names.set(name, hash),
    named: (name) => names.get(name),
  };
}

/** A plugin whose live state is the set of applied ids, and whose image is that set's part. */
function fakePlugin(name: string, ids: string[], withImages: boolean): Plugin {
  const applied = new Set<string>();
  return {
    name,
    resources: { thing: "a thing" },
    check: () => ({ problems: [], warnings: [] }),
    query: async () => [...applied],
    normalise: async () => ({}),
    resolve: () => ({}),
    diff: (_desired, live) =>
      ids.filter((id) => !(live as string[]).includes(id)).map((id) => createAction(name, id)),
    apply: async (action) => void applied.add(action.id),
    report: () => ({ columns: [], rows: [] }),
    ...(withImages
      ? {
          imageScope: (actions) => actions.map((action) => action.id),
          image: (scope, live) => ({
            section: {
              things: (scope as string[]).filter((id) => (live as string[]).includes(id)),
            },
            refused: [],
          }),
        }
      : {}),
  };
}

async function applyWith(
  plugins: Plugin[],
  store: BlobStore,
  records: RecordedStep[],
  rollbackOf?: string,
) {
  const ledger = memoryLedger(records);
  const report = await reconcile(
    {
      mode: "apply",
      file: "state.json",
      parsed: { version: 1, plugins: Object.fromEntries(plugins.map((p) => [p.name, {}])) },
      ...(rollbackOf === undefined ? {} : { rollbackOf }),
    },
    {
      registry: createRegistry(
        plugins.map((p, order) => ({
          name: p.name,
          aliases: [],
          order,
          schema: p.name,
          load: async () => p,
        })),
      ),
      ctx: () => quietCtx(),
      checkFile: async () => ({
        document: {
          version: 1,
          sections: new Map(plugins.map((p) => [p.name, {}])),
          paths: new Map(plugins.map((p) => [p.name, `/plugins/${p.name}`])),
        },
        plugins,
      }),
      ledger: {
        exists: () => false,
        open: async () => Object.assign(ledger, { close: async () => {} }),
      },
      lock: async () => ({ release: () => {} }),
      newRunId: () => "run-1",
      images: store,
    },
  );
  return { report, ledger };
}

describe("pre-images in a run", () => {
  it("are stored and recorded in the chain before the first change; a verified run keeps a post-image", async () => {
    const store = memoryStore();
    let stored = 0;
    const network = fakePlugin("network", ["a", "b"], true);
    const apply = network.apply;
    // The pre-image is there when the first change is made.
    network.apply = async (action, ctx) => {
      stored ||= store.blobs.size;
      await apply(action, ctx);
    };
    const plugins = [network, fakePlugin("sysctl", ["k"], false)];
    const { report, ledger } = await applyWith(plugins, store, []);
    expect(report.converged).toBe(true);
    expect(stored).toBe(1);
    // The run's first record names the pre-image by its hash; then its intents and outcomes.
    expect(ledger.records[0]).toMatchObject({ plugin: "op", target: "pre-image", status: "ok" });
    expect(
      ledger.records
        .slice(1)
        .map((r) => `${r.target} ${r.status}`)
        .sort(),
    ).toEqual(["a intent", "a ok", "b intent", "b ok", "k intent", "k ok"]);
    const named = (ledger.records[0]?.changes as ImageReference | undefined)?.preimage ?? "";
    expect(store.blobs.has(named)).toBe(true);

    const pre = readImage(store, named as string, "pre-image");
    expect(pre.plugins.network).toEqual({
      scope: ["a", "b"],
      section: { things: [] },
      refused: [],
    });
    // A plugin without images cannot be undone, and says so.
    expect(unrestorable(pre)).toEqual(["sysctl: this plugin keeps no pre-images yet"]);
    expect(undoDocument(pre)).toEqual({ version: 1, plugins: { network: { things: [] } } });

    const postHash = store.named(postName("run-1"));
    const post = readImage(store, postHash as string, "post-image");
    expect(post.plugins.network?.section).toEqual({ things: ["a", "b"] });
  });

  it("of a rollback run are named in a record of its own, before its first intent", async () => {
    const store = memoryStore();
    const { ledger } = await applyWith([fakePlugin("network", ["a"], true)], store, [], "run-0");
    const [first, second] = ledger.records;
    expect(first).toMatchObject({ run: "run-1", plugin: "op", target: "pre-image", status: "ok" });
    expect(second?.status).toBe("intent");
    expect(first?.changes as ImageReference).toEqual({
      preimage: expect.stringMatching(/^[0-9a-f]{64}$/),
      plugins: ["network"],
      rollbackOf: "run-0",
    });
  });

  it("writes nothing when the plan is empty", async () => {
    const store = memoryStore();
    const { ledger } = await applyWith([fakePlugin("network", [], true)], store, []);
    expect(ledger.records).toEqual([]);
    expect(store.blobs.size).toBe(0);
  });

  it("refuses a blob whose bytes do not match its name", () => {
    const store = memoryStore();
    expect(() => readImage(store, "0".repeat(64), "pre-image")).toThrow(/not in the image store/);
  });
});

describe("changedSince", () => {
  const image = (section: unknown): RunImage => ({
    run: "r",
    when: "post",
    plugins: { network: { scope: null, section, refused: [] } },
  });

  it("names each path that differs, array entries by their name", () => {
    const then = image({
      interfaces: [
        { name: "br0", ipv4: { addresses: ["198.18.0.1/24"] } },
        { name: "v0", mtu: 1500 },
      ],
    });
    const now = image({
      interfaces: [
        { name: "br0", ipv4: { addresses: ["198.18.0.1/24", "198.18.0.2/24"] } },
        { name: "v0", mtu: 1500 },
      ],
    });
    expect(changedSince(then, now)).toEqual([
      'network /interfaces/br0/ipv4/addresses/1: none then, "198.18.0.2/24" now',
    ]);
    expect(changedSince(then, then)).toEqual([]);
  });

  it("names a table by family and name, and a resource gone as a whole", () => {
    const then = image({ tables: [{ family: "inet", name: "t", chains: [] }] });
    const now = image(undefined);
    expect(changedSince(then, now)).toEqual([
      'network /: {"tables":[{"family":"inet","name":"t","chains":[]}]} then, null now',
    ]);
    const changed = image({ tables: [{ family: "inet", name: "t", chains: [{ name: "c" }] }] });
    expect(changedSince(then, changed)).toEqual([
      'network /tables/inet/t/chains/c: none then, {"name":"c"} now',
    ]);
  });

  it("names a resource whose host mark (an ETag) differs, though its section does not", () => {
    const marked = (marks?: Record<string, string>): RunImage => ({
      run: "r",
      when: "post",
      plugins: {
        lxc: { scope: null, section: { containers: [] }, refused: [], ...(marks ? { marks } : {}) },
      },
    });
    const then = marked({ "container web ETag": "a".repeat(64) });
    expect(changedSince(then, then)).toEqual([]);
    expect(changedSince(then, marked({ "container web ETag": "b".repeat(64) }))).toEqual([
      `lxc container web ETag: ${"a".repeat(12)} then, ${"b".repeat(12)} now`,
    ]);
    // Gone since (no mark now) is a change too; a mark only now was no part of the run's image.
    expect(changedSince(then, marked())).toEqual([
      `lxc container web ETag: ${"a".repeat(12)} then, none now`,
    ]);
    expect(changedSince(marked(), then)).toEqual([]);
  });
});
