/**
 * What the engine's unit tests share: action builders (the payloads are empty, only order
 * matters; every action is on a resource of kind `thing`, needs are written `plugin/id` for
 * short, and label gives a plan key back in a short form, `kind:plugin:id`), an in-memory
 * plugin whose diff is fixed, and a checked file of empty sections.
 */
import type { Action, Plugin, ResourceRef } from "../plugin.js";
import type { RunReport } from "./run.js";

const resource = "thing";

/** The resource `plugin/id` of kind `thing` (the tests' shorthand). */
export function ref(short: string): ResourceRef {
  const slash = short.indexOf("/");
  if (slash < 0) throw new Error(`test shorthand ${short} is not plugin/id`);
  return { plugin: short.slice(0, slash), resource, id: short.slice(slash + 1) };
}

/** A plan key (src/engine/plan.ts actionKey) in the tests' short form. */
export function label(key: string): string {
  const [kind, plugin, , id] = JSON.parse(key) as string[];
  return `${kind}:${plugin}:${id}`;
}

const withNeeds = (needs?: string[]) => (needs ? { needs: needs.map(ref) } : {});

export const createAction = (plugin: string, id: string, needs?: string[]): Action => ({
  kind: "create",
  plugin,
  resource,
  id,
  after: {},
  reason: "not on host",
  ...withNeeds(needs),
});

export const deleteAction = (plugin: string, id: string, needs?: string[]): Action => ({
  kind: "delete",
  plugin,
  resource,
  id,
  before: {},
  reason: "absent",
  ...withNeeds(needs),
});

export const modifyAction = (plugin: string, id: string): Action => ({
  kind: "modify",
  plugin,
  resource,
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
    resources: { [resource]: "a test resource" },
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

/** A run's report with nothing planned or done, and `overrides` on top. */
export const runReport = (overrides: Partial<RunReport>): RunReport => ({
  mode: "apply",
  file: "s.json",
  actions: [],
  excluded: [],
  summary: { create: 0, modify: 0, delete: 0 },
  settlements: [],
  outcomes: [],
  converged: true,
  interrupted: false,
  ...overrides,
});
