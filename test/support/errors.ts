/**
 * The OpError a piece of code throws, for tests that look at its code, message or hint; any
 * other outcome (no error, another kind of error) fails the test.
 */
import { expect } from "vitest";
import { OpError } from "../../src/errors.js";

export function thrown(run: () => unknown): OpError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(OpError);
    return error as OpError;
  }
  throw new Error("expected an OpError");
}

export async function rejection(promise: Promise<unknown>): Promise<OpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpError);
  return error as OpError;
}
