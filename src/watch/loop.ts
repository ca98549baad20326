/**
 * The `op watch` loop: one full run at start, then runs for what the event sources hint at,
 * and a full resync every few minutes for what they miss. Everything that makes it safe to
 * leave running lives here, away from the engine and the command line:
 *
 * - hints are debounced per resource, and those that pile up while a run is going coalesce
 *   into the next run (one run at a time);
 * - hints echoing op's own changes (during its run and `quietMs` after) start no run; one
 *   that came after the run is rechecked once that window is over (it may be someone else's);
 * - a resource whose action fails is left out of runs with exponential back-off, a run that
 *   fails as a whole backs off its plugins, and a global rate limit caps runs per minute;
 * - a resource corrected too often is "flapping": op stops enforcing it until the file changes;
 * - a source that errors is resubscribed with back-off, while resyncs go on.
 *
 * Time comes from an rxjs scheduler, so tests drive it with a virtual one. The run itself is
 * the caller's (`run`): the CLI makes it one `reconcile` of the file, apply or check.
 */
import {
  asyncScheduler,
  concatWith,
  debounceTime,
  groupBy,
  merge,
  mergeMap,
  retry,
  type SchedulerLike,
  Subject,
  Subscription,
  throwError,
  timer,
} from "rxjs";
import { messageOf } from "../engine/reconcile.js";
import type { ResourceId } from "../engine/scope.js";
import type { Hint, HintSource } from "./hint.js";
import { Backoff, FlapDetector, RateLimit } from "./limits.js";
import type { WatchLog } from "./log.js";

/** What the loop asks of one run. */
export interface WatchRunRequest {
  /** The plugins to read and plan; undefined: the whole file. */
  plugins?: string[];
  /** Resources not to enforce: flapping ones and those backing off. */
  exclude: ResourceId[];
  /** Why this run: "start", "hint", "resync", "reload", "retry". */
  reason: string;
}

/** A resource a run acted on, and what it did. */
export interface RunChange extends ResourceId {
  kind: "create" | "modify" | "delete";
}

export interface WatchRunResult {
  /** Resources whose action succeeded: op corrected them. */
  corrected: RunChange[];
  /** Resources whose action failed, was skipped or has an unknown outcome. */
  failed: RunChange[];
  /** Resources found differing and left so (`--observe`, held actions). */
  drift: RunChange[];
  /** The run could not be made at all (host lock busy, a daemon unreadable): why. */
  error?: string;
}

export interface WatchOptions {
  sources: readonly HintSource[];
  run(request: WatchRunRequest): Promise<WatchRunResult>;
  log: WatchLog;
  /**
   * Whether a hint can concern the file at all (the CLI: its plugin has a section); others
   * are dropped unlogged. A source serves several plugins and the host's other links are
   * events too. Default: every hint.
   */
  relevant?(hint: Hint): boolean;
  /** Called once when a resource becomes flapping (the CLI records it in the ledger). */
  onFlapping?(resource: RunChange, corrections: number): Promise<void>;
  scheduler?: SchedulerLike;
  /** For the resync's jitter; tests fix it. */
  random?: () => number;
  debounceMs?: number;
  resyncMs?: number;
  /** How long after a run a hint about what it changed is taken as its echo. */
  quietMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Runs of any kind, in a sliding window. */
  rateLimit?: { runs: number; windowMs: number };
  /** Runs that changed something (or failed to), in a sliding window. */
  correctionLimit?: { runs: number; windowMs: number };
  flapping?: { count: number; withinMs: number };
}

export interface Watch {
  /** The file changed (SIGHUP with a new valid file): flapping is forgiven, a full run follows. */
  reload(): void;
  /** Starts no new run, lets the one in flight finish; resolves once it has. */
  stop(): Promise<void>;
  /** Resources not enforced now because they flap. */
  flapping(): ResourceId[];
}

export const watchDefaults = {
  debounceMs: 1000,
  resyncMs: 5 * 60_000,
  quietMs: 1000,
  backoff: { initialMs: 1000, maxMs: 5 * 60_000 },
  // A run that finds nothing to do is a read (tens of ms): a host's own noise (a container's
  // restart is a dozen link events) may take many of them without holding back a correction.
  rateLimit: { runs: 120, windowMs: 60_000 },
  correctionLimit: { runs: 30, windowMs: 60_000 },
  flapping: { count: 5, withinMs: 10 * 60_000 },
  /** ± this fraction of the resync period, so that hosts started together do not sync together. */
  jitter: 0.1,
} as const;

const keyOf = (r: ResourceId) => `${r.plugin}/${r.id}`;
const hintKey = (hint: Hint) => `${hint.plugin}/${hint.id ?? "*"}`;

/** A hint as it came: when, and the run going then (if one was). */
interface ArrivedHint {
  hint: Hint;
  at: number;
  during?: number;
}
/** A hint or failure about a plugin as a whole; `pluginKey("*")`: a full run's failure. */
const pluginKey = (plugin: string) => `${plugin}/*`;
const fullKey = pluginKey("*");
const fromKey = (key: string): ResourceId => {
  const slash = key.indexOf("/");
  return { plugin: key.slice(0, slash), id: key.slice(slash + 1) };
};

export function startWatch(options: WatchOptions): Watch {
  const scheduler = options.scheduler ?? asyncScheduler;
  const random = options.random ?? Math.random;
  const { log } = options;
  const debounceMs = options.debounceMs ?? watchDefaults.debounceMs;
  const resyncMs = options.resyncMs ?? watchDefaults.resyncMs;
  const quietMs = options.quietMs ?? watchDefaults.quietMs;
  const backoffOptions = options.backoff ?? watchDefaults.backoff;
  const backoff = new Backoff(backoffOptions.initialMs, backoffOptions.maxMs);
  const rate = options.rateLimit ?? watchDefaults.rateLimit;
  const rateLimit = new RateLimit(rate.runs, rate.windowMs);
  const correction = options.correctionLimit ?? watchDefaults.correctionLimit;
  const correctionLimit = new RateLimit(correction.runs, correction.windowMs);
  const flapOptions = options.flapping ?? watchDefaults.flapping;
  const flaps = new FlapDetector(flapOptions.count, flapOptions.withinMs);
  const now = () => scheduler.now();

  /** Everything stop() must end: the sources, the debounce, the timers not yet fired. */
  const subscriptions = new Subscription();
  /** A timer that leaves `subscriptions` once fired: a watch runs for months. */
  const later = (ms: number, work: () => void) => {
    const timer: Subscription = scheduler.schedule(
      () => {
        subscriptions.remove(timer);
        work();
      },
      Math.max(0, ms),
    );
    subscriptions.add(timer);
  };
  let stopped = false;
  let running: Promise<void> | undefined;
  /** Work waiting for a run: a full run, and plugin → resource keys (pluginKey for all of it). */
  let fullPending: string | undefined;
  const queued = new Map<string, Set<string>>();
  /** Runs started so far: a hint remembers which one was going when it came. */
  let runSeq = 0;
  /** The run going, until what it acted on is known. */
  let activeSeq: number | undefined;
  /** Debounced hints that came while a run was going: sorted out once it is known what it changed. */
  let duringRun: ArrivedHint[] = [];
  /** What the last few runs acted on, and when they ended: hints about it then are echoes. */
  const recent: { seq: number; touched: Set<string>; end: number }[] = [];
  /** A wake-up is scheduled at this time (rate limit, back-off); undefined: none. */
  let wakeAt: number | undefined;
  let rateLogged = false;

  const enqueue = (plugin: string, key: string) => {
    const keys = queued.get(plugin) ?? new Set<string>();
    keys.add(key);
    queued.set(plugin, keys);
  };

  const wakeUpAt = (at: number) => {
    if (stopped || (wakeAt !== undefined && wakeAt <= at)) return;
    wakeAt = at;
    later(at - now(), () => {
      if (wakeAt === at) wakeAt = undefined;
      pump();
    });
  };

  /** A resource (or plugin) backing off: what is asked of it waits until then. */
  const isWaiting = (key: string) => backoff.waiting(key, now());

  /** Starts the next run if there is work, none is going, and the limits allow it. */
  const pump = (): void => {
    if (stopped || running !== undefined) return;
    const time = now();
    // Plugins whose every queued key is backing off have nothing to run yet.
    const ready = [...queued].filter(
      ([plugin, keys]) => !isWaiting(pluginKey(plugin)) && [...keys].some((k) => !isWaiting(k)),
    );
    const full = fullPending !== undefined && !isWaiting(fullKey);
    if (!full && ready.length === 0) {
      scheduleWaiting();
      return;
    }
    const allowed = Math.max(rateLimit.nextAllowed(time), correctionLimit.nextAllowed(time));
    if (allowed > time) {
      if (!rateLogged) {
        const [limit, what] =
          rateLimit.nextAllowed(time) > time ? [rate, "runs"] : [correction, "correcting-runs"];
        log("rate-limited", { [what]: limit.runs, "window-s": limit.windowMs / 1000 });
        rateLogged = true;
      }
      wakeUpAt(allowed);
      return;
    }
    rateLogged = false;
    const reason = full ? fullPending : undefined;
    const plugins = full ? undefined : ready.map(([plugin]) => plugin);
    if (full) fullPending = undefined;
    for (const plugin of plugins ?? [...queued.keys()]) {
      const keys = queued.get(plugin);
      if (keys === undefined) continue;
      // What is backing off stays queued for when it may be tried again.
      for (const key of keys) if (!isWaiting(key)) keys.delete(key);
      if (keys.size === 0) queued.delete(plugin);
    }
    rateLimit.record(time);
    const exclude = [...flaps.flappingKeys(), ...backoff.waitingKeys(time)]
      .filter((key) => !key.endsWith("/*"))
      .map(fromKey);
    const request: WatchRunRequest = {
      ...(plugins === undefined ? {} : { plugins }),
      exclude,
      reason: reason ?? "hint",
    };
    for (const plugin of plugins ?? ["*"]) readFrom.set(plugin, time);
    runSeq++;
    activeSeq = runSeq;
    running = runOnce(request).finally(() => {
      running = undefined;
      pump();
    });
  };

  /** Wakes up when the first back-off of queued work ends. */
  const scheduleWaiting = () => {
    const time = now();
    const keys = [
      ...(fullPending === undefined ? [] : [fullKey]),
      ...[...queued].flatMap(([plugin, keys]) => [pluginKey(plugin), ...keys]),
    ];
    const waits = keys.filter(isWaiting).map((key) => backoff.until(key));
    if (waits.length > 0) wakeUpAt(Math.max(time, Math.min(...waits)));
  };

  const runOnce = async (request: WatchRunRequest): Promise<void> => {
    const started = now();
    log("run-start", {
      reason: request.reason,
      plugins: request.plugins ?? "all",
      excluded: request.exclude.length > 0 ? request.exclude.map(keyOf) : undefined,
    });
    let result: WatchRunResult;
    try {
      result = await options.run(request);
    } catch (error) {
      result = { corrected: [], failed: [], drift: [], error: messageOf(error) };
    }
    const ended = now();
    if (result.error !== undefined) {
      // The run as a whole failed: back off what it was for (each plugin, or the full run)
      // and try it again then.
      for (const plugin of request.plugins ?? ["*"]) {
        const { until, failures } = backoff.fail(pluginKey(plugin), ended);
        if (plugin === "*") fullPending ??= "retry";
        else enqueue(plugin, pluginKey(plugin));
        log("run-failed", {
          plugins: plugin === "*" ? "all" : plugin,
          error: result.error,
          failures,
          "retry-in-s": (until - ended) / 1000,
        });
      }
    } else if (request.plugins === undefined) {
      // A full run that worked read every plugin: none needs its own retry any more.
      backoff.succeedWhere((key) => key.endsWith("/*"));
    } else {
      for (const plugin of request.plugins) backoff.succeed(pluginKey(plugin));
    }
    for (const change of result.corrected) {
      const key = keyOf(change);
      backoff.succeed(key);
      log("corrected", { plugin: change.plugin, id: change.id, kind: change.kind });
      // The first run brings the host to the file: that is not a fight with anyone.
      if (request.reason === "start") continue;
      if (flaps.corrected(key, ended)) markFlapping(change);
    }
    for (const change of result.failed) {
      const key = keyOf(change);
      const { until, failures } = backoff.fail(key, ended);
      enqueue(change.plugin, key);
      log("failed", {
        plugin: change.plugin,
        id: change.id,
        kind: change.kind,
        failures,
        "retry-in-s": (until - ended) / 1000,
      });
    }
    for (const change of result.drift) {
      log("drift", { plugin: change.plugin, id: change.id, kind: change.kind });
    }
    log("run-end", {
      reason: request.reason,
      corrected: result.corrected.length,
      failed: result.failed.length,
      drift: result.drift.length,
      "duration-ms": ended - started,
      ok: result.error === undefined,
    });
    const touched = [...result.corrected, ...result.failed];
    if (touched.length > 0) correctionLimit.record(started);
    recent.push({
      seq: runSeq,
      touched: new Set(touched.flatMap((c) => [keyOf(c), pluginKey(c.plugin)])),
      end: ended,
    });
    if (recent.length > 4) recent.shift();
    activeSeq = undefined;
    const held = duringRun;
    duringRun = [];
    for (const arrived of held) accept(arrived);
  };

  const markFlapping = (resource: RunChange) => {
    const corrections = flapOptions.count;
    log("flapping", {
      plugin: resource.plugin,
      id: resource.id,
      corrections,
      "within-min": flapOptions.withinMs / 60_000,
      action: "no longer enforced until the file changes or op watch restarts",
    });
    options.onFlapping?.(resource, corrections).catch((error: unknown) => {
      log("flapping-record-failed", {
        plugin: resource.plugin,
        id: resource.id,
        error: messageOf(error),
      });
    });
  };

  /** Resources to read once more when their echo window is over (recheck). */
  const rechecks = new Set<string>();
  /** When a run last started reading each plugin (`*`: a full run). */
  const readFrom = new Map<string, number>();
  const readSince = (plugin: string, time: number) =>
    Math.max(readFrom.get(plugin) ?? -1, readFrom.get("*") ?? -1) >= time;

  /**
   * A hint that came after its run ended cannot be told from someone else's change made in
   * the same short window, so the resource is read once more when the window is over (unless a
   * run has read its plugin since): a run that then finds it matching changes nothing and so
   * makes no echo of its own. One pending recheck per resource. (A hint that came during the
   * run needs none: the run's verify read the host after its changes.)
   */
  const recheck = (plugin: string, key: string, windowEnd: number) => {
    if (rechecks.has(key)) return;
    rechecks.add(key);
    later(Math.max(0, windowEnd - now()), () => {
      rechecks.delete(key);
      // A run that started after the window read the resource already.
      if (stopped || flaps.isFlapping(key) || readSince(plugin, windowEnd)) return;
      log("recheck", { plugin, id: fromKey(key).id });
      enqueue(plugin, key);
      pump();
    });
  };

  /**
   * A debounced hint: taken as an echo of a run's own change when it came during that run, or
   * within `quietMs` after it, about what the run acted on; then not run on, but rechecked
   * once the window is over. Held while its run is going, otherwise queued.
   */
  const accept = ({ hint, at, during }: ArrivedHint): void => {
    const key = hintKey(hint);
    if (during !== undefined && during === activeSeq) {
      duringRun.push({ hint, at, during });
      return;
    }
    const echoed = recent.filter(
      (run) =>
        run.touched.has(key) && (run.seq === during || (run.end <= at && at - run.end < quietMs)),
    );
    if (echoed.length > 0) {
      log("hint-ignored", { plugin: hint.plugin, id: hint.id, why: "op's own change" });
      const after = echoed.filter((run) => run.seq !== during);
      if (after.length > 0)
        recheck(hint.plugin, key, Math.max(...after.map((run) => run.end)) + quietMs);
      return;
    }
    if (flaps.isFlapping(key)) {
      log("hint-ignored", { plugin: hint.plugin, id: hint.id, why: "flapping" });
      return;
    }
    enqueue(hint.plugin, key);
  };

  const debounced = new Subject<ArrivedHint>();
  const onHint = (hint: Hint) => {
    if (stopped || options.relevant?.(hint) === false) return;
    log("hint", { source: hint.source, plugin: hint.plugin, id: hint.id, what: hint.what });
    debounced.next({ hint, at: now(), ...(running === undefined ? {} : { during: runSeq }) });
  };
  subscriptions.add(
    debounced
      .pipe(
        // One stream per resource, each debounced on its own; an idle one is closed.
        groupBy(({ hint }) => hintKey(hint), {
          duration: (group) => group.pipe(debounceTime(debounceMs * 4, scheduler)),
        }),
        mergeMap((group) => group.pipe(debounceTime(debounceMs, scheduler))),
      )
      .subscribe((arrived) => {
        accept(arrived);
        pump();
      }),
  );

  // Each source on its own: one that errors (or ends) is resubscribed after a back-off, the
  // others and the resyncs go on meanwhile.
  subscriptions.add(
    merge(
      ...options.sources.map((source) =>
        source.hints().pipe(
          concatWith(throwError(() => new Error("the event stream ended"))),
          retry({
            resetOnSuccess: true,
            delay: (error: unknown, attempt: number) => {
              const wait = backoff.delayAfter(attempt);
              log("source-error", {
                source: source.name,
                error: messageOf(error),
                attempt,
                "resubscribe-in-s": wait / 1000,
              });
              return timer(wait, scheduler);
            },
          }),
        ),
      ),
    ).subscribe(onHint),
  );

  const scheduleResync = () => {
    const jitter = 1 + watchDefaults.jitter * (2 * random() - 1);
    later(resyncMs * jitter, () => {
      if (stopped) return;
      fullPending ??= "resync";
      pump();
      scheduleResync();
    });
  };
  scheduleResync();

  fullPending = "start";
  pump();

  return {
    reload() {
      if (stopped) return;
      const forgiven = flaps.flappingKeys();
      flaps.clear();
      backoff.clear();
      log("reloaded", { forgiven: forgiven.length > 0 ? forgiven : undefined });
      fullPending = "reload";
      pump();
    },
    async stop() {
      stopped = true;
      subscriptions.unsubscribe();
      debounced.complete();
      await running;
    },
    flapping: () => flaps.flappingKeys().map(fromKey),
  };
}
