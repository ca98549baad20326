/**
 * What a plugin's `check` is given of a section its schema refused: a copy without what the
 * schema refused, so that the check (which trusts the types the schema promises) still finds
 * the problems the schema cannot see, and all are reported at once. The check's paths are
 * then told back in the file's terms (an array item removed shifts the ones after it).
 */
import type { ErrorObject, ValidateFunction } from "ajv";

/** A section a check may be given, and how to turn the check's paths into the file's. */
export interface Checkable {
  section: unknown;
  /** The file's path for a path into `section` (given with the section's own path first). */
  filePath(path: string): string;
}

/** How many rounds of removal a section gets to pass its schema before its check is skipped. */
const maxRounds = 8;

/**
 * A copy of `section` without what its schema refused, if that copy passes the schema;
 * undefined if it cannot (the section itself is refused). What goes: an unknown field, an
 * invalid value (an optional field's, so the check sees it as not given), an object that then
 * lacks a required field, and an array item that is invalid or lacks one. `sectionPath` is
 * the section's JSON path in the file.
 */
export function checkableCopy(
  section: Record<string, unknown>,
  sectionPath: string,
  firstErrors: readonly ErrorObject[],
  validate: ValidateFunction,
): Checkable | undefined {
  const copy = structuredClone(section);
  /** For each array an item was removed from: the file's index of each remaining item. */
  const fileIndexes = new WeakMap<unknown[], number[]>();
  let errors = firstErrors;
  for (let round = 0; round < maxRounds; round++) {
    const doomed = new Map<unknown[], Set<number>>();
    for (const error of errors) {
      const unknownField =
        error.keyword === "additionalProperties"
          ? [String((error.params as Record<string, unknown>).additionalProperty)]
          : [];
      const keys = [...pointerKeys(error.instancePath), ...unknownField];
      if (!remove(copy, keys, doomed)) return undefined;
    }
    for (const [array, indexes] of doomed) {
      const before = fileIndexes.get(array) ?? array.map((_, i) => i);
      const kept = array.flatMap((item, i) => (indexes.has(i) ? [] : [[item, before[i]] as const]));
      array.splice(0, array.length, ...kept.map(([item]) => item));
      fileIndexes.set(
        array,
        kept.map(([, index]) => index as number),
      );
    }
    if (validate(copy)) {
      return {
        section: copy,
        filePath: (path) => filePath(copy, sectionPath, path, fileIndexes),
      };
    }
    errors = validate.errors ?? [];
  }
  return undefined;
}

/**
 * Removes the value at `keys`: an object's field at once, an array's item at the end of the
 * round (so the other paths of the round still point where they did). Already gone counts
 * as removed; the section itself cannot be.
 */
function remove(
  root: Record<string, unknown>,
  keys: readonly string[],
  doomed: Map<unknown[], Set<number>>,
): boolean {
  const last = keys.at(-1);
  if (last === undefined) return false;
  let parent: unknown = root;
  for (const key of keys.slice(0, -1)) parent = childOf(parent, key);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (Number.isInteger(index) && index >= 0 && index < parent.length) {
      const marked = doomed.get(parent) ?? new Set<number>();
      marked.add(index);
      doomed.set(parent, marked);
    }
    return true;
  }
  if (typeof parent === "object" && parent !== null) {
    delete (parent as Record<string, unknown>)[last];
  }
  return true;
}

function childOf(value: unknown, key: string): unknown {
  if (Array.isArray(value)) return value[Number(key)];
  if (typeof value === "object" && value !== null) return (value as Record<string, unknown>)[key];
  return undefined;
}

function pointerKeys(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((key) => key.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** `path` (a check's, into the copy) with each array index the file's again. */
function filePath(
  copy: unknown,
  sectionPath: string,
  path: string,
  fileIndexes: WeakMap<unknown[], number[]>,
): string {
  if (path !== sectionPath && !path.startsWith(`${sectionPath}/`)) return path;
  const segments = path.slice(sectionPath.length).split("/").slice(1);
  let value = copy;
  const out = segments.map((segment) => {
    const key = segment.replace(/~1/g, "/").replace(/~0/g, "~");
    const here = value;
    value = childOf(here, key);
    if (!Array.isArray(here)) return segment;
    const index = fileIndexes.get(here)?.[Number(key)];
    return index === undefined ? segment : String(index);
  });
  return [sectionPath, ...out].join("/");
}
