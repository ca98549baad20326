/**
 * Sort orders. Plain code-unit order, never localeCompare: its first call in a process loads
 * ICU's collator, which costs more than a converged plan's own work.
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** For sorting anything with a name. */
export function byName(a: { name: string }, b: { name: string }): number {
  return byCodeUnit(a.name, b.name);
}
