/** The contract's action shape (src/cli/contract.ts) from engine actions. */
import { describe, expect, it } from "vitest";
import type { Action } from "../plugin.js";
import { actionsJson, formatVersion, jsonDocument } from "./contract.js";

const ref = { plugin: "lxc", resource: "container", id: "c1", reason: "r" } as const;

describe("actionsJson", () => {
  it("marks both halves of a delete and create of one resource as a replace, and nothing else", () => {
    const actions: Action[] = [
      { ...ref, kind: "delete", before: { image: "a" } },
      { ...ref, kind: "create", after: { image: "b" } },
      { ...ref, id: "c2", kind: "create", after: { image: "b" } },
    ];
    expect(actionsJson(actions).map((a) => [a.action, a.id, a.replace, a.before, a.after])).toEqual(
      [
        ["delete", "c1", true, { image: "a" }, null],
        ["create", "c1", true, null, { image: "b" }],
        ["create", "c2", false, null, { image: "b" }],
      ],
    );
  });

  it("gives a modify's changes per field, null for the side that is absent, with restart and held", () => {
    const [modify] = actionsJson([
      {
        ...ref,
        kind: "modify",
        before: { x: 1 },
        after: { x: 2 },
        changes: [
          { path: "config.raw.lxc", before: "a", after: "b" },
          { path: "config.added", after: "c" },
          { path: "config.removed", before: "d" },
        ],
        restart: true,
        held: "restart required",
        adopt: { path: "/plugins/lxc/containers/0", allowed: true },
      },
    ]);
    expect(modify).toEqual({
      action: "adopt",
      kind: "modify",
      plugin: "lxc",
      resource: "container",
      id: "c1",
      reason: "r",
      before: { x: 1 },
      after: { x: 2 },
      changes: [
        { field: "config.raw.lxc", before: "a", after: "b" },
        { field: "config.added", before: null, after: "c" },
        { field: "config.removed", before: "d", after: null },
      ],
      replace: false,
      restart: true,
      held: "restart required",
      adopt: { path: "/plugins/lxc/containers/0", allowed: true },
    });
  });
});

it("puts format_version first in every document", () => {
  const document = jsonDocument({ a: 1, format_version: "x" });
  expect(Object.keys(document)).toEqual(["format_version", "a"]);
  expect(document.format_version).toBe(formatVersion);
});
