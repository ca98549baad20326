/** Action builders the engine's unit tests share: the payloads are empty, only order matters. */
import type { Action } from "../plugin.js";

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
