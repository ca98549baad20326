/**
 * The watch loop on virtual time: a fake source the test pushes hints into, a fake run that
 * records what it was asked and answers what the test scripts, and rxjs's VirtualTimeScheduler
 * advanced step by step (each due action, then the promises it started), so nothing waits.
 */
import { Observable, Subject, VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import type { Hint, HintSource } from "./hint.js";
import type { LogValue } from "./log.js";
import {
  startWatch,
  type WatchOptions,
  type WatchRunRequest,
  type WatchRunResult,
} from "./loop.js";

/** Lets every promise the last action started run to its end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Advances virtual time by `ms`, running each due action and then what it set going. */
async function advance(scheduler: VirtualTimeScheduler, ms: number): Promise<void> {
  const target = scheduler.frame + ms;
  for (;;) {
    await settle();
    const next = scheduler.actions[0];
    if (next === undefined || next.delay > target) break;
    scheduler.maxFrames = next.delay;
    scheduler.flush();
  }
  scheduler.frame = target;
  await settle();
}

/** A source whose hints the test pushes; `fail` errors its current subscription. */
function fakeSource(plugins: string[] = ["network"]) {
  let current: Subject<Hint> | undefined;
  let subscriptions = 0;
  const source: HintSource = {
    name: "fake",
    plugins,
    hints: () =>
      new Observable<Hint>((subscriber) => {
        subscriptions++;
        current = new Subject<Hint>();
        const inner = current.subscribe(subscriber);
        return () => inner.unsubscribe();
      }),
  };
  return {
    source,
    subscriptions: () => subscriptions,
    hint: (id: string | undefined, plugin = "network") =>
      current?.next({ plugin, ...(id === undefined ? {} : { id }), source: "fake", what: "x" }),
    fail: () => current?.error(new Error("listener fell behind")),
  };
}

type Script = (request: WatchRunRequest) => Partial<WatchRunResult>;

/** A watch on virtual time whose runs answer `script` (default: nothing to do). */
function setUp(script: Script = () => ({}), overrides: Partial<WatchOptions> = {}, runTakesMs = 0) {
  const scheduler = new VirtualTimeScheduler();
  const runs: (WatchRunRequest & { at: number })[] = [];
  const lines: { event: string; fields: Record<string, LogValue> }[] = [];
  const flapped: string[] = [];
  let runMs = runTakesMs;
  const source = fakeSource();
  const watch = startWatch({
    sources: [source.source],
    scheduler,
    random: () => 0.5,
    log: (event, fields = {}) => lines.push({ event, fields: { ...fields } }),
    run: async (request) => {
      runs.push({ ...request, at: scheduler.now() });
      // A run that takes time ends when the virtual clock gets there.
      if (runMs > 0) await new Promise((resolve) => scheduler.schedule(resolve, runMs));
      return { corrected: [], failed: [], drift: [], ...script(request) };
    },
    onFlapping: async (resource, corrections) => {
      flapped.push(`${resource.plugin}/${resource.id} after ${corrections}`);
    },
    ...overrides,
  });
  return {
    scheduler,
    runs,
    lines,
    flapped,
    source,
    watch,
    advance: (ms: number) => advance(scheduler, ms),
    runTakes: (ms: number) => {
      runMs = ms;
    },
    events: (name: string) => lines.filter((line) => line.event === name),
  };
}

const ids = (request: WatchRunRequest) => request.exclude.map((r) => `${r.plugin}/${r.id}`);

describe("watch loop", () => {
  it("runs the whole file at start, then once per debounced burst for the plugin hinted", async () => {
    const t = setUp();
    await t.advance(0);
    expect(t.runs.map((r) => [r.reason, r.plugins])).toEqual([["start", undefined]]);
    // Five events about br0 within the debounce: one run, 1 s after the last.
    for (let i = 0; i < 5; i++) {
      t.source.hint("br0");
      await t.advance(300);
    }
    expect(t.runs).toHaveLength(1);
    await t.advance(800);
    expect(t.runs.map((r) => [r.reason, r.plugins, r.at])).toEqual([
      ["start", undefined, 0],
      ["hint", ["network"], 2200],
    ]);
    await t.watch.stop();
  });

  it("debounces each resource on its own and coalesces what queued during a run", async () => {
    const t = setUp();
    await t.advance(0);
    t.runTakes(5000);
    t.source.hint("br0");
    await t.advance(1000);
    expect(t.runs.map((r) => r.at)).toEqual([0, 1000]);
    // While that run goes on: two resources of two plugins; one run for both after it.
    t.source.hint("ct1", "lxc");
    t.source.hint("br1");
    await t.advance(2000);
    t.source.hint("br1");
    await t.advance(6000);
    expect(t.runs.map((r) => [r.reason, r.plugins?.toSorted(), r.at])).toEqual([
      ["start", undefined, 0],
      ["hint", ["network"], 1000],
      ["hint", ["lxc", "network"], 6000],
    ]);
    await t.advance(5000);
    await t.watch.stop();
  });

  it("runs on no hint echoing its own change, during the run or just after, but reads the resource once more after the window", async () => {
    let first = true;
    const t = setUp(
      () => {
        if (!first) return {};
        first = false;
        return { corrected: [{ plugin: "network", id: "br0", kind: "create" }] };
      },
      {},
      2000,
    );
    await t.advance(0);
    // During the start run, which creates br0: its own echo, and a change to br9 by someone else.
    t.source.hint("br0");
    t.source.hint("br9");
    await t.advance(2000);
    // Just after the run: br0's echo again.
    t.source.hint("br0");
    await t.advance(500);
    await t.advance(6000);
    expect(t.events("hint-ignored").map((l) => [l.fields.id, l.fields.why])).toEqual([
      ["br0", "op's own change"],
      ["br0", "op's own change"],
    ]);
    // br9's run at 2000; br0's recheck, due when the echo window closed (3000), once that run
    // ended: someone else's change to br0 inside the window is not missed.
    expect(t.runs.map((r) => [r.reason, r.plugins, r.at])).toEqual([
      ["start", undefined, 0],
      ["hint", ["network"], 2000],
      ["hint", ["network"], 4000],
    ]);
    expect(t.events("recheck").map((l) => l.fields.id)).toEqual(["br0"]);
    // Once the quiet time is over, a change to br0 is someone else's again.
    t.source.hint("br0");
    await t.advance(3000);
    expect(t.runs).toHaveLength(4);
    await t.advance(2000);
    await t.watch.stop();
  });

  it("rechecks an echo only when no run has read its plugin since the window closed", async () => {
    let first = true;
    const t = setUp(() => {
      if (!first) return {};
      first = false;
      return { corrected: [{ plugin: "network", id: "br0", kind: "create" }] };
    });
    await t.advance(0);
    // br1 changed by someone else right after the start run (its run at 1000), and br0's echo
    // at 900: taken up at 1900, after br1's run read the network plugin once br0's window
    // (to 1000) had closed, so no recheck is needed.
    t.source.hint("br1");
    await t.advance(900);
    t.source.hint("br0");
    await t.advance(4000);
    expect(t.events("hint-ignored").map((l) => l.fields.id)).toEqual(["br0"]);
    expect(t.events("recheck")).toEqual([]);
    expect(t.runs.map((r) => [r.reason, r.plugins, r.at])).toEqual([
      ["start", undefined, 0],
      ["hint", ["network"], 1000],
    ]);
    await t.watch.stop();
  });

  it("backs off a resource whose action fails, 1 s then doubling, excluded meanwhile", async () => {
    const t = setUp((request) =>
      request.exclude.length === 0 || request.reason === "start"
        ? { failed: [{ plugin: "network", id: "br0", kind: "create" }] }
        : {},
    );
    await t.advance(0);
    expect(t.events("failed").map((l) => l.fields["retry-in-s"])).toEqual([1]);
    await t.advance(1000);
    await t.advance(2000);
    await t.advance(4000);
    // Retries at 1 s, then 2 s and 4 s after each failure.
    expect(t.runs.map((r) => r.at)).toEqual([0, 1000, 3000, 7000]);
    expect(t.events("failed").map((l) => l.fields["retry-in-s"])).toEqual([1, 2, 4, 8]);
    // Meanwhile another resource's hint runs the plugin with br0 left out.
    t.source.hint("br1");
    await t.advance(1000);
    expect(ids(t.runs.at(-1) as WatchRunRequest)).toEqual(["network/br0"]);
    await t.watch.stop();
  });

  it("caps the back-off at its ceiling", async () => {
    const t = setUp(() => ({ failed: [{ plugin: "network", id: "br0", kind: "modify" }] }), {
      backoff: { initialMs: 1000, maxMs: 4000 },
    });
    await t.advance(30_000);
    expect(t.events("failed").map((l) => l.fields["retry-in-s"])).toEqual([
      1, 2, 4, 4, 4, 4, 4, 4, 4,
    ]);
    await t.watch.stop();
  });

  it("backs off a run that fails as a whole, and a full run retries as a full run", async () => {
    let failing = 2;
    const t = setUp(() => (failing-- > 0 ? { error: "another op apply holds the lock" } : {}));
    await t.advance(0);
    await t.advance(3000);
    expect(t.runs.map((r) => [r.reason, r.plugins, r.at])).toEqual([
      ["start", undefined, 0],
      ["retry", undefined, 1000],
      ["retry", undefined, 3000],
    ]);
    expect(t.events("run-failed").map((l) => l.fields["retry-in-s"])).toEqual([1, 2]);
    await t.watch.stop();
  });

  it("keeps to the global rate limit whatever the hints", async () => {
    const t = setUp(() => ({}), { rateLimit: { runs: 3, windowMs: 60_000 }, debounceMs: 10 });
    await t.advance(0);
    for (let i = 0; i < 20; i++) {
      t.source.hint(`br${i}`);
      await t.advance(100);
    }
    // The start run and two more within the minute; the rest wait for the window.
    expect(t.runs).toHaveLength(3);
    expect(t.events("rate-limited")).toHaveLength(1);
    await t.advance(60_000);
    expect(t.runs).toHaveLength(4);
    expect(t.runs.at(-1)?.plugins).toEqual(["network"]);
    await t.watch.stop();
  });

  it("counts runs that change something against the correction limit, the others only against the rate limit", async () => {
    // Runs find nothing to do until `correcting`; then each corrects the resource hinted.
    let correcting = false;
    let corrections = 0;
    const t = setUp(
      () =>
        correcting
          ? { corrected: [{ plugin: "network", id: `fix${corrections++}`, kind: "modify" }] }
          : {},
      {
        rateLimit: { runs: 10, windowMs: 60_000 },
        correctionLimit: { runs: 3, windowMs: 60_000 },
        debounceMs: 10,
      },
    );
    await t.advance(0);
    for (let i = 0; i < 5; i++) {
      t.source.hint(`br${i}`);
      await t.advance(100);
    }
    // Five reads and the start: none held back by the correction limit.
    expect(t.runs).toHaveLength(6);
    expect(t.events("rate-limited")).toEqual([]);
    correcting = true;
    for (let i = 0; i < 5; i++) {
      t.source.hint(`fix${i}`);
      await t.advance(100);
    }
    // Three corrections in the minute; the rest wait for the window.
    expect(t.runs).toHaveLength(9);
    expect(t.events("rate-limited").map((l) => l.fields["correcting-runs"])).toEqual([3]);
    await t.advance(60_000);
    expect(t.runs).toHaveLength(10);
    await t.watch.stop();
  });

  it("stops enforcing a resource corrected K times in M minutes, records it once, and forgives it on reload", async () => {
    const t = setUp(
      (request) =>
        ids(request).includes("network/br0")
          ? {}
          : { corrected: [{ plugin: "network", id: "br0", kind: "modify" }] },
      { flapping: { count: 3, withinMs: 60_000 } },
    );
    // Past the start run's quiet time. Someone else then keeps undoing br0 every 5 s; the
    // start run's correction does not count.
    await t.advance(2000);
    for (let i = 0; i < 6; i++) {
      t.source.hint("br0");
      await t.advance(5000);
    }
    expect(t.flapped).toEqual(["network/br0 after 3"]);
    expect(t.events("flapping")).toHaveLength(1);
    expect(t.watch.flapping()).toEqual([{ plugin: "network", id: "br0" }]);
    // After the third correction, hints about br0 start no run: no storm.
    expect(t.events("corrected")).toHaveLength(4);
    expect(t.runs).toHaveLength(4);
    expect(t.events("hint-ignored").filter((l) => l.fields.why === "flapping")).toHaveLength(3);
    // Any later run (a resync) leaves br0 out.
    await t.advance(5 * 60_000);
    expect(t.runs.at(-1)?.reason).toBe("resync");
    expect(ids(t.runs.at(-1) as WatchRunRequest)).toEqual(["network/br0"]);
    t.watch.reload();
    await t.advance(0);
    expect(t.runs.at(-1)?.reason).toBe("reload");
    expect(ids(t.runs.at(-1) as WatchRunRequest)).toEqual([]);
    expect(t.watch.flapping()).toEqual([]);
    await t.watch.stop();
  });

  it("resyncs the whole file every period, with jitter", async () => {
    const t = setUp(() => ({}), { resyncMs: 60_000, random: () => 1 });
    await t.advance(0);
    await t.advance(66_000);
    expect(t.runs.map((r) => [r.reason, r.at])).toEqual([
      ["start", 0],
      ["resync", 66_000],
    ]);
    await t.watch.stop();
  });

  it("resubscribes a source that errors, with back-off, while resyncs go on", async () => {
    const t = setUp(() => ({}), { resyncMs: 10_000, random: () => 0.5 });
    await t.advance(0);
    expect(t.source.subscriptions()).toBe(1);
    t.source.fail();
    await t.advance(999);
    expect(t.source.subscriptions()).toBe(1);
    await t.advance(1);
    expect(t.source.subscriptions()).toBe(2);
    // Failing again at once (no hint between): the wait doubles.
    t.source.fail();
    await t.advance(1999);
    expect(t.source.subscriptions()).toBe(2);
    await t.advance(1);
    expect(t.source.subscriptions()).toBe(3);
    expect(t.events("source-error").map((l) => l.fields["resubscribe-in-s"])).toEqual([1, 2]);
    // Hints flow again through the new subscription, and the resync came meanwhile.
    t.source.hint("br0");
    await t.advance(10_000);
    expect(t.runs.map((r) => r.reason)).toEqual(["start", "hint", "resync"]);
    await t.watch.stop();
  });

  it("drops hints the caller says cannot concern the file", async () => {
    const t = setUp(() => ({}), { relevant: (hint) => hint.plugin !== "lxc" });
    await t.advance(0);
    t.source.hint("ct1", "lxc");
    await t.advance(2000);
    expect(t.events("hint")).toEqual([]);
    expect(t.runs).toHaveLength(1);
    t.source.hint("br0");
    await t.advance(2000);
    expect(t.runs.map((r) => r.plugins)).toEqual([undefined, ["network"]]);
    await t.watch.stop();
  });

  it("on stop, lets the run in flight finish and starts no other", async () => {
    const t = setUp();
    await t.advance(0);
    t.runTakes(3000);
    t.source.hint("br0");
    await t.advance(1000);
    expect(t.runs.map((r) => r.reason)).toEqual(["start", "hint"]);
    t.source.hint("br1");
    let stopped = false;
    const stopping = t.watch.stop().then(() => {
      stopped = true;
    });
    await t.advance(1000);
    expect(stopped).toBe(false);
    await t.advance(2000);
    await stopping;
    expect(stopped).toBe(true);
    expect(t.events("run-end")).toHaveLength(2);
    await t.advance(10 * 60_000);
    expect(t.runs).toHaveLength(2);
  });
});
