/**
 * The instance a command names, on the real daemon: found in its project, refused when op did
 * not create it (unless --any) or when it must run and does not, and a missing one named.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpError } from "../../../src/errors.js";
import { createIncusClient } from "../../../src/incus.js";
import { sh, testImage } from "../../../test/support/lxc.js";
import { instanceTarget, parseInstanceName } from "./target.js";

const tag = randomBytes(3).toString("hex");
const ours = `opit-${tag}-a`;
const theirs = `opit-${tag}-b`;
const incus = createIncusClient("/var/lib/incus/unix.socket");

async function refusal(promise: Promise<unknown>): Promise<OpError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return error as OpError;
}

beforeAll(() => {
  sh("incus", ["init", testImage, ours, "-q", "-c", "user.op.managed=true"]);
  sh("incus", ["init", testImage, theirs, "-q"]);
});
afterAll(() => {
  for (const name of [ours, theirs]) sh("incus", ["delete", "--force", name]);
  incus.close();
});

describe("the instance a command names", () => {
  it("is read with its status and owner", async () => {
    expect(await instanceTarget(incus, { name: ours }, { any: false, running: false })).toEqual({
      name: ours,
      project: "default",
      status: "stopped",
      managed: true,
    });
  });

  it("is refused when op did not create it, unless --any", async () => {
    const error = await refusal(
      instanceTarget(incus, { name: theirs }, { any: false, running: false }),
    );
    expect(error.message).toBe(
      `instance ${theirs} was not created by op (it lacks user.op.managed=true)`,
    );
    expect(error.hint).toBe("give --any to work in an instance op does not manage");
    const any = await instanceTarget(incus, { name: theirs }, { any: true, running: false });
    expect(any.managed).toBe(false);
  });

  it("is refused when it must run and is stopped", async () => {
    const error = await refusal(
      instanceTarget(incus, { name: ours }, { any: false, running: true }),
    );
    expect(error.message).toBe(
      `instance ${ours} is stopped, and a command runs only in a running instance`,
    );
  });

  it("that does not exist is named, with its project", async () => {
    const missing = await refusal(
      instanceTarget(incus, { name: `opit-${tag}-none` }, { any: true, running: false }),
    );
    expect(missing.code).toBe("not-found");
    expect(missing.message).toBe(`instance opit-${tag}-none does not exist`);
    const elsewhere = await refusal(
      instanceTarget(incus, { project: `opit${tag}`, name: ours }, { any: true, running: false }),
    );
    expect(elsewhere.message).toBe(`project opit${tag} does not exist`);
  });
});

describe("a name on the command line", () => {
  it("takes NAME and PROJECT/NAME, and refuses what Incus could not name", () => {
    expect(parseInstanceName("web")).toEqual({ name: "web" });
    expect(parseInstanceName("p1/web")).toEqual({ project: "p1", name: "web" });
    for (const bad of ["web;rm", "-web", "web-", "a/b/c", "$(x)", "", "p 1/web", "x".repeat(64)])
      expect(() => parseInstanceName(bad), bad).toThrow(OpError);
  });
});
