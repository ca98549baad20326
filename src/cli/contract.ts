/**
 * The machine contract: what every `--json` document op prints has in common (docs/json-output.md).
 * Each starts with `format_version`; plans and applies describe actions in one shape; errors are
 * one shape. Callers (the Ansible collection, CI scripts) read these, so a change here is a
 * change of the format: additions raise the minor version, anything else the major one.
 */
import {
  type Action,
  type ActionVerb,
  type Adoption,
  type ResourceRef,
  verbOf,
} from "../plugin.js";

/** The version of every JSON document op prints; schemas/output/ describes each. */
export const formatVersion = "1.0";

/** A document as printed: `format_version` first, then the command's own fields. */
export function jsonDocument(body: object): Record<string, unknown> {
  const document: Record<string, unknown> = { format_version: formatVersion, ...body };
  // A body's own field of that name (none has one) must not pass for the format's version.
  document.format_version = formatVersion;
  return document;
}

/** Prints one JSON document to stdout. */
export function printDocument(body: object): void {
  process.stdout.write(`${JSON.stringify(jsonDocument(body), null, 2)}\n`);
}

export interface ChangeJson {
  /** The field's dotted path in the resource's state object (`config.limits.cpu`). */
  field: string;
  /** null when the field is added (or removed, for `after`). */
  before: unknown;
  after: unknown;
}

export interface ActionJson {
  action: ActionVerb;
  /** The engine's kind (an adopt is a modify): what the ledger records. */
  kind: Action["kind"];
  plugin: string;
  resource: string;
  id: string;
  reason: string;
  /** The resource's state as read (null when it does not exist yet). */
  before: unknown;
  /** The resource's state as the file wants it (null when it is deleted). */
  after: unknown;
  changes: ChangeJson[];
  /** The resource is deleted and created again (this action is one of the two). */
  replace: boolean;
  /** The change restarts a running container. */
  restart: boolean;
  held?: string;
  /** Resources this action waits for (and is skipped without). */
  needs?: ResourceRef[];
  /** Resources that must exist by the time it runs, made by another action or already there. */
  expects?: ResourceRef[];
  /** The object is not op's: where the file adopts it. */
  adopt?: Adoption | readonly Adoption[];
}

/** The plan key of a resource, whatever is done to it. */
function resourceKey(action: Pick<Action, "plugin" | "resource" | "id">): string {
  return JSON.stringify([action.plugin, action.resource, action.id]);
}

/** Every action of a plan in the contract's shape (a replace is a delete and a create of one id). */
export function actionsJson(actions: readonly Action[]): ActionJson[] {
  const kinds = new Map<string, Set<string>>();
  for (const action of actions) {
    const key = resourceKey(action);
    kinds.set(key, (kinds.get(key) ?? new Set()).add(action.kind));
  }
  return actions.map((action) => {
    const both = kinds.get(resourceKey(action));
    return actionJson(action, both?.has("create") === true && both.has("delete"));
  });
}

function actionJson(action: Action, replace: boolean): ActionJson {
  const state = {
    before: action.kind === "create" ? null : (action.before ?? null),
    after: action.kind === "delete" ? null : (action.after ?? null),
  };
  const changes =
    action.kind === "modify"
      ? action.changes.map((change) => ({
          field: change.path,
          before: change.before ?? null,
          after: change.after ?? null,
        }))
      : [];
  return {
    action: verbOf(action),
    kind: action.kind,
    plugin: action.plugin,
    resource: action.resource,
    id: action.id,
    reason: action.reason,
    ...state,
    changes,
    replace,
    restart: action.restart === true,
    ...(action.held === undefined ? {} : { held: action.held }),
    ...(action.needs === undefined ? {} : { needs: action.needs }),
    ...(action.expects === undefined ? {} : { expects: action.expects }),
    ...(action.adopt === undefined ? {} : { adopt: action.adopt }),
  };
}
