import { describe, expect, it } from "vitest";
import { OpError } from "../errors.js";
import { environmentOf } from "./exec.js";

describe("op exec --env", () => {
  it("splits at the first '=': a value may hold '=' or be empty", () => {
    expect(environmentOf(["A=1", "B=x=y", "C=", "A=2"])).toEqual({ A: "2", B: "x=y", C: "" });
  });

  it.each([
    ["A", "no '='"],
    ["=1", "the name before '=' is empty"],
    ["", "no '='"],
  ])("refuses %j as a usage error naming it", (pair, why) => {
    let caught: unknown;
    try {
      environmentOf(["OK=1", pair]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OpError);
    expect((caught as OpError).code).toBe("usage");
    expect((caught as OpError).message).toBe(`--env ${JSON.stringify(pair)}: ${why}`);
    expect((caught as OpError).hint).toMatch(/NAME=VALUE/);
  });
});
