/**
 * The globs of a section's `ignore` list: `*` (any run of characters, `/` included), `?` (one
 * character), `[...]` (one of a set: `a-z` ranges, `!` or `^` first to negate) and `\` (the
 * next character as it is). Nothing else is special: no shell ever sees a glob. Written here
 * rather than taken from npm because this is all op needs, and matching stays linear in the
 * glob times the name (no backtracking blow-up on `*a*a*a*b`), whatever the input.
 */

type Token =
  | { kind: "char"; char: string }
  | { kind: "one" }
  | { kind: "star" }
  | { kind: "set"; negated: boolean; ranges: [string, string][] };

export interface Glob {
  readonly source: string;
  matches(name: string): boolean;
}

/** A glob that cannot be read: what is wrong with it, for a problem line. */
export class GlobError extends Error {}

/** Compiles a glob; throws GlobError naming what is wrong (an unclosed `[`, a trailing `\`). */
export function compileGlob(source: string): Glob {
  const tokens = tokenise(Array.from(source));
  return { source, matches: (name) => match(tokens, Array.from(name)) };
}

function tokenise(chars: string[]): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] as string;
    if (char === "*") {
      // `**` means what `*` does; one token keeps the match simple.
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" });
    } else if (char === "?") {
      tokens.push({ kind: "one" });
    } else if (char === "\\") {
      const next = chars[++i];
      if (next === undefined) throw new GlobError("ends with a lone \\ (escape what?)");
      tokens.push({ kind: "char", char: next });
    } else if (char === "[") {
      const { token, end } = readSet(chars, i);
      tokens.push(token);
      i = end;
    } else {
      tokens.push({ kind: "char", char });
    }
  }
  return tokens;
}

/** The set that starts at `chars[start]` (`[`) and the index of its closing `]`. */
function readSet(chars: string[], start: number): { token: Token; end: number } {
  let i = start + 1;
  const negated = chars[i] === "!" || chars[i] === "^";
  if (negated) i++;
  const ranges: [string, string][] = [];
  // A `]` right after the opening (or its `!`) is a member, as in the shell.
  for (let first = true; ; first = false) {
    const char = chars[i];
    if (char === undefined)
      throw new GlobError(`has a [ at character ${start + 1} that is never closed by ]`);
    if (char === "]" && !first) return { token: { kind: "set", negated, ranges }, end: i };
    const low = char === "\\" ? chars[++i] : char;
    if (low === undefined) throw new GlobError("ends with a lone \\ (escape what?)");
    if (chars[i + 1] === "-" && chars[i + 2] !== undefined && chars[i + 2] !== "]") {
      const high = chars[i + 2] as string;
      if (high < low) throw new GlobError(`has the range ${low}-${high}, whose end comes first`);
      ranges.push([low, high]);
      i += 3;
    } else {
      ranges.push([low, low]);
      i++;
    }
  }
}

function matchesOne(token: Token, char: string): boolean {
  switch (token.kind) {
    case "char":
      return token.char === char;
    case "one":
      return true;
    case "set":
      return token.ranges.some(([low, high]) => low <= char && char <= high) !== token.negated;
    case "star":
      return false;
  }
}

/**
 * Greedy match with one remembered star: on a mismatch, the last star takes one more
 * character and the match resumes after it. Each star is resumed at most once per position
 * of the name, so the cost is at most the glob's length times the name's.
 */
function match(tokens: readonly Token[], name: readonly string[]): boolean {
  let t = 0;
  let n = 0;
  let starAt = -1;
  let starFrom = 0;
  while (n < name.length) {
    const token = tokens[t];
    if (token?.kind === "star") {
      starAt = t++;
      starFrom = n;
    } else if (token !== undefined && matchesOne(token, name[n] as string)) {
      t++;
      n++;
    } else if (starAt >= 0) {
      t = starAt + 1;
      n = ++starFrom;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === "star") t++;
  return t === tokens.length;
}
