/**
 * `snapshots.schedule` and `snapshots.expiry` as Incus accepts them, checked before any change
 * so that a bad value is refused with its JSON path instead of by Incus halfway through a run.
 * The rules were taken from the daemon itself (`incus profile set P snapshots.schedule=...`):
 * entries joined by `, `; each an alias (any case) or 5 fields separated by single spaces,
 * each field a list of `*`, `?`, N or N-M, with an optional `/STEP`, in the field's range;
 * months and weekdays also by their three-letter names; a weekday is 0-6.
 */

const aliases = new Set([
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
  "@startup",
  "@never",
]);

const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface Field {
  what: string;
  min: number;
  max: number;
  /** Names for the values from `min` on. */
  names?: readonly string[];
}

const fields: readonly Field[] = [
  { what: "minute", min: 0, max: 59 },
  { what: "hour", min: 0, max: 23 },
  { what: "day of month", min: 1, max: 31 },
  { what: "month", min: 1, max: 12, names: months },
  { what: "day of week", min: 0, max: 6, names: weekdays },
];

/** Why `schedule` is not one Incus accepts, or undefined when it is (an empty one turns it off). */
export function scheduleProblem(schedule: string): string | undefined {
  if (schedule === "") return undefined;
  for (const entry of schedule.split(", ")) {
    const problem = entryProblem(entry);
    if (problem !== undefined) return `${JSON.stringify(entry)}: ${problem}`;
  }
  return undefined;
}

function entryProblem(entry: string): string | undefined {
  if (entry.startsWith("@")) {
    if (entry.includes(",")) return 'several schedules are joined by ", " (a comma and a space)';
    return aliases.has(entry.toLowerCase())
      ? undefined
      : `unknown alias (Incus knows ${[...aliases].join(", ")})`;
  }
  const parts = entry.split(" ");
  if (parts.length !== 5) {
    return 'a schedule has 5 fields separated by single spaces: minute hour day-of-month month day-of-week (several schedules are joined by ", ")';
  }
  for (const [i, part] of parts.entries()) {
    const field = fields[i] as Field;
    const problem = fieldProblem(part, field);
    if (problem !== undefined) return `${field.what} ${JSON.stringify(part)}: ${problem}`;
  }
  return undefined;
}

function fieldProblem(text: string, field: Field): string | undefined {
  for (const item of text.split(",")) {
    const [range = "", step, ...extra] = item.split("/");
    if (extra.length > 0 || (step !== undefined && !/^[0-9]+$/.test(step)))
      return "a step is written /N";
    if (step !== undefined && Number(step) === 0) return "a step of 0 never fires";
    if (range === "*" || range === "?") continue;
    const [from = "", to, ...more] = range.split("-");
    if (more.length > 0) return "a range is written N-M";
    const low = numberIn(from, field);
    const high = to === undefined ? low : numberIn(to, field);
    if (low === undefined || high === undefined)
      return `not a number${field.names === undefined ? "" : " or a name"}`;
    if (low < field.min || high > field.max) return `out of range (${field.min}-${field.max})`;
    if (low > high) return "a range goes from low to high";
  }
  return undefined;
}

function numberIn(text: string, field: Field): number | undefined {
  if (/^[0-9]{1,4}$/.test(text)) return Number(text);
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  return named === -1 ? undefined : field.min + named;
}

/**
 * Whether a snapshot's name is one the schedule may have made from `pattern` (Incus's default
 * `snap%d`): `%d` stands for a number and a `{{ ... }}` template for any text, the rest is
 * literal. What prune spares.
 */
export function madeBySchedule(name: string, pattern = "snap%d"): boolean {
  const source = pattern
    .split(/(%d|\{\{.*?\}\})/)
    .map((piece) =>
      piece === "%d"
        ? "[0-9]+"
        : piece.startsWith("{{")
          ? ".+"
          : piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${source}$`).test(name);
}
