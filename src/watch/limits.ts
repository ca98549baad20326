/**
 * The watch's brakes, as plain bookkeeping over times the caller gives (milliseconds on the
 * watch's scheduler): no timers here, so each is tested by handing it times.
 */

/** Exponential back-off per key: 1 s, 2 s, 4 s ... up to a ceiling; a success forgets it. */
export class Backoff {
  private readonly entries = new Map<string, { failures: number; until: number }>();

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  /** The delay after `failures` failures in a row (1 → initialMs). */
  delayAfter(failures: number): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(failures - 1, 30));
  }

  /** Records a failure at `now`; returns when the key may be tried again. */
  fail(key: string, now: number): { failures: number; until: number } {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const entry = { failures, until: now + this.delayAfter(failures) };
    this.entries.set(key, entry);
    return entry;
  }

  succeed(key: string): void {
    this.entries.delete(key);
  }

  succeedWhere(match: (key: string) => boolean): void {
    for (const key of [...this.entries.keys()]) if (match(key)) this.entries.delete(key);
  }

  /** When `key` may be tried again (0: now). */
  until(key: string): number {
    return this.entries.get(key)?.until ?? 0;
  }

  /** Whether `key` is still waiting at `now`. */
  waiting(key: string, now: number): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.until > now;
  }

  /** Keys still waiting at `now`. */
  waitingKeys(now: number): string[] {
    return [...this.entries].filter(([, e]) => e.until > now).map(([key]) => key);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** At most `limit` runs in any window of `windowMs` (a sliding window of start times). */
export class RateLimit {
  private starts: number[] = [];

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** When the next run may start: `now`, or when the oldest run in the window leaves it. */
  nextAllowed(now: number): number {
    this.starts = this.starts.filter((t) => t > now - this.windowMs);
    if (this.starts.length < this.limit) return now;
    return (this.starts[0] as number) + this.windowMs;
  }

  record(now: number): void {
    this.starts.push(now);
  }
}

/**
 * Flapping: the same resource corrected `count` times within `withinMs` means something else
 * keeps undoing op's change; op stops fighting it. Once flapping, a resource stays so until
 * `clear` (a changed file, or a restart).
 */
export class FlapDetector {
  private readonly corrections = new Map<string, number[]>();
  private readonly flapping = new Set<string>();

  constructor(
    readonly count: number,
    readonly withinMs: number,
  ) {}

  /** Records a correction; true when this one makes the resource flapping. */
  corrected(key: string, now: number): boolean {
    if (this.flapping.has(key)) return false;
    const times = [...(this.corrections.get(key) ?? []), now].filter(
      (t) => t > now - this.withinMs,
    );
    this.corrections.set(key, times);
    if (times.length < this.count) return false;
    this.flapping.add(key);
    this.corrections.delete(key);
    return true;
  }

  /** Corrections of `key` within the window, as last recorded. */
  correctionsOf(key: string): number {
    return this.corrections.get(key)?.length ?? 0;
  }

  isFlapping(key: string): boolean {
    return this.flapping.has(key);
  }

  flappingKeys(): string[] {
    return [...this.flapping];
  }

  clear(): void {
    this.corrections.clear();
    this.flapping.clear();
  }
}
