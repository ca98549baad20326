/**
 * Runs a plan: its waves one after the other (a wave starts when every step of the earlier
 * waves has finished, whatever the outcome), and within a wave a DAG of `needs` with bounded
 * concurrency (rxjs `mergeMap` with a bound). A step is skipped (not run) when a step it needs
 * failed or was skipped.
 */
import { catchError, from, map, mergeMap, of, Subject } from "rxjs";
import { isOutcomeUnknown } from "../outcome.js";
import type { PlanStep } from "./plan.js";

/**
 * `unknown`: the step failed in a way that leaves the host's state unknown (src/outcome.ts);
 * `cancelled`: the run was interrupted before the step started.
 */
export type StepOutcome =
  | { key: string; status: "ok" }
  | { key: string; status: "failed" | "unknown"; error: unknown }
  | { key: string; status: "skipped"; because: string }
  | { key: string; status: "cancelled" }
  /** Not run: the action waits for the user's leave (Action.held says why). */
  | { key: string; status: "held"; reason: string };

export interface RunStepsOptions {
  /** How many steps of a wave may run at once (a wave holds one plugin's actions). */
  concurrencyOf: (step: PlanStep) => number;
  onOutcome?: (outcome: StepOutcome) => void;
  /** Once aborted, no step starts; the steps in flight finish and are recorded. */
  signal?: AbortSignal;
}

export async function runSteps(
  steps: readonly PlanStep[],
  work: (step: PlanStep) => Promise<void>,
  options: RunStepsOptions,
): Promise<Map<string, StepOutcome>> {
  const outcomes = new Map<string, StepOutcome>();
  const waves = new Map<number, PlanStep[]>();
  for (const step of steps) waves.set(step.wave, [...(waves.get(step.wave) ?? []), step]);
  const ordered = [...waves.entries()].sort(([a], [b]) => a - b).map(([, wave]) => wave);
  for (const wave of ordered) assertAcyclic(wave);

  const record = (outcome: StepOutcome): void => {
    outcomes.set(outcome.key, outcome);
    options.onOutcome?.(outcome);
  };
  for (const wave of ordered) {
    const first = wave[0] as PlanStep;
    await runWave(
      wave,
      outcomes,
      work,
      Math.max(1, options.concurrencyOf(first)),
      record,
      options.signal,
    );
  }
  return outcomes;
}

function runWave(
  wave: readonly PlanStep[],
  earlier: ReadonlyMap<string, StepOutcome>,
  work: (step: PlanStep) => Promise<void>,
  concurrency: number,
  record: (outcome: StepOutcome) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const inWave = new Map(wave.map((step) => [step.key, step]));
  const settled = new Map<string, StepOutcome["status"]>();
  const statusOf = (key: string) => settled.get(key) ?? earlier.get(key)?.status;
  const waitingOn = new Map(
    wave.map((step) => [step.key, new Set(step.needs.filter((k) => inWave.has(k)))]),
  );
  const dependents = new Map<string, string[]>();
  for (const step of wave) {
    for (const need of waitingOn.get(step.key) ?? [])
      dependents.set(need, [...(dependents.get(need) ?? []), step.key]);
  }

  return new Promise((resolve, reject) => {
    const ready = new Subject<PlanStep>();
    // Settling can make further steps ready or skipped; handle them iteratively.
    const settle = (first: StepOutcome): void => {
      const queue: StepOutcome[] = [first];
      while (queue.length > 0) {
        const done = queue.shift() as StepOutcome;
        settled.set(done.key, done.status);
        record(done);
        for (const dependentKey of dependents.get(done.key) ?? []) {
          const pending = waitingOn.get(dependentKey) as Set<string>;
          pending.delete(done.key);
          if (pending.size === 0) release(inWave.get(dependentKey) as PlanStep, queue);
        }
      }
      if (settled.size === wave.length) ready.complete();
    };
    const release = (step: PlanStep, queue: StepOutcome[]): void => {
      const broken = step.needs.find((k) => statusOf(k) !== "ok");
      if (signal?.aborted) queue.push({ key: step.key, status: "cancelled" });
      else if (broken === undefined) ready.next(step);
      else queue.push({ key: step.key, status: "skipped", because: broken });
    };

    ready
      .pipe(
        mergeMap(
          // Checked when the step would start, not when it was queued behind the bound.
          (step) =>
            signal?.aborted
              ? of<StepOutcome>({ key: step.key, status: "cancelled" })
              : from(work(step)).pipe(
                  map((): StepOutcome => ({ key: step.key, status: "ok" })),
                  catchError((error: unknown) =>
                    of<StepOutcome>({
                      key: step.key,
                      status: isOutcomeUnknown(error) ? "unknown" : "failed",
                      error,
                    }),
                  ),
                ),
          concurrency,
        ),
      )
      .subscribe({
        // rxjs reports an error thrown by `next` as unhandled; the caller must get it instead.
        next: (outcome) => {
          try {
            settle(outcome);
          } catch (error) {
            reject(error);
          }
        },
        error: reject,
        complete: () => resolve(),
      });

    const initial: StepOutcome[] = [];
    for (const step of wave) {
      if (waitingOn.get(step.key)?.size === 0) release(step, initial);
    }
    try {
      for (const skipped of initial) settle(skipped);
    } catch (error) {
      reject(error);
    }
  });
}

/** A cycle in `needs` would leave steps waiting forever; it is a plugin bug, so fail loudly. */
function assertAcyclic(wave: readonly PlanStep[]): void {
  const keys = new Set(wave.map((step) => step.key));
  const state = new Map<string, "visiting" | "done">();
  const byKey = new Map(wave.map((step) => [step.key, step]));
  const visit = (key: string, path: string[]): void => {
    if (state.get(key) === "done") return;
    if (state.get(key) === "visiting") {
      throw new Error(`bug: the plan has a dependency cycle: ${[...path, key].join(" → ")}`);
    }
    state.set(key, "visiting");
    for (const need of byKey.get(key)?.needs ?? []) if (keys.has(need)) visit(need, [...path, key]);
    state.set(key, "done");
  };
  for (const key of keys) visit(key, []);
}
