/**
 * What the engine's unit tests share: action builders (the payloads are empty, only order
 * matters), an in-memory plugin whose diff is fixed, and a checked file of empty sections.
 */
import type { Action, Plugin } from "../plugin.js";

const withNeeds = (needs?: string[]) => (needs ? { needs } : {});

export const createAction = (plugin: string, id: string, needs?: string[]): Action => ({
  kind: "create",
  plugin,
  id,
  after: {},
  reason: "not on host",
  ...withNeeds(needs),
});

export const deleteAction = (plugin: string, id: string, needs?: string[]): Action => ({
  kind: "delete",
  plugin,
  id,
  before: {},
  reason: "absent",
  ...withNeeds(needs),
});

export const modifyAction = (plugin: string, id: string): Action => ({
  kind: "modify",
  plugin,
  id,
  before: {},
  after: {},
  changes: [],
  reason: "differs",
});

/** A plugin whose diff is always `actions` and whose apply is `apply`. */
export function fakePlugin(
  name: string,
  actions: Action[],
  apply: Plugin["apply"] = async () => {},
): Plugin {
  return {
    name,
    check: () => ({ problems: [], warnings: [] }),
    query: async () => ({}),
    normalise: async () => ({}),
    resolve: () => ({}),
    diff: () => actions,
    apply,
    report: () => ({ columns: [], rows: [] }),
  };
}

/** A checked file with an empty section for each plugin named, as planState takes it. */
export const emptySections = (...names: string[]) => ({
  version: 1,
  sections: new Map(names.map((n) => [n, {}])),
  paths: new Map(names.map((n) => [n, `/plugins/${n}`])),
});
