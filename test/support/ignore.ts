/**
 * `ignore` globs for tests whose file prunes: prune sees host-global objects (Open vSwitch's
 * bridges, every Incus project), so such a file ignores every name outside the test's prefix.
 */

/** Globs for every name that does not start with `prefix` (shorter names included). */
export function allBut(prefix: string): string[] {
  const chars = [...prefix];
  return chars.flatMap((char, k) => {
    const head = chars.slice(0, k).join("");
    return [...(k === 0 ? [] : [head]), `${head}[!${char}]*`];
  });
}
