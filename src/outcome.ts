/**
 * An error after which op cannot know whether the host changed: the request was sent (or the
 * command had started) when the connection was lost or the wait ran out. The engine records
 * such an action's outcome as `unknown`, not `failed`, and the next run settles it from what
 * it reads. It travels as the `cause` of the OpError the user sees (OpError.within keeps it).
 */
export class OutcomeUnknown extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutcomeUnknown";
  }
}

/** Whether `error`, or anything in its chain of causes, says the outcome is unknown. */
export function isOutcomeUnknown(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof OutcomeUnknown) return true;
  }
  return false;
}
