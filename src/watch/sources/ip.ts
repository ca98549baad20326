/**
 * Hints from `ip -o monitor label link address route`: one line per change, prefixed with its
 * kind. iproute2 6.1 (this project's hosts) accepts `ip -j monitor` but still prints text, so
 * the text form is parsed; `-o` keeps each event on one line, `label` says which kind it is.
 */
import { filter, map, mergeMap, type Observable } from "rxjs";
import { followLines } from "../../exec.js";
import type { Hint, HintSource } from "../hint.js";
import { lxcPlugin, networkPlugin, type SourceIds } from "./ids.js";

const source = "ip";

/**
 * A link name the network plugin accepts (schemas/network.schema.json): anything else is no
 * link op can manage. Shell characters it allows stay inert: no hint is ever given to a shell.
 */
const linkName = /^(?!\.\.?$)[!$&(-.0-9;-[\]-~]{1,15}$/;

/** The hints one line of `ip -o monitor label` gives (none for a line it cannot read). */
export function ipMonitorHints(line: string, ids: SourceIds): Hint[] {
  const labelled = /^\[(LINK|ADDR|ROUTE)\](Deleted )?(.*)$/.exec(line);
  if (!labelled) return [];
  const [, kind, deleted, rest = ""] = labelled;
  const verb = deleted ? "deleted" : "changed";
  if (kind === "LINK") {
    // `3: vi4242@vp4242: <FLAGS> …`: the name ends at `@` (its peer) or `:`.
    const match = /^\d+: ([^\s@:]+)(?:@[^\s:]+)?: </.exec(rest);
    return match?.[1] ? linkHints(match[1], `link ${match[1]} ${verb}`, ids) : [];
  }
  if (kind === "ADDR") {
    // `3: vi4242    inet 198.18.5.1/24 scope global vi4243\ …`: the first name is the one
    // `ip` knew the link by, the label at the end its current one; both may be ids.
    const match = /^\d+: (\S+)\s+(inet6?) (\S+)/.exec(rest);
    if (!match?.[1] || !linkName.test(match[1])) return [];
    return linkHints(match[1], `address ${match[3]} on ${match[1]} ${verb}`, ids);
  }
  return routeHints(rest, verb, ids);
}

function linkHints(name: string, what: string, ids: SourceIds): Hint[] {
  if (!linkName.test(name)) return [];
  const hints: Hint[] = [{ plugin: networkPlugin, id: ids.link(name), source, what }];
  // The lxc plugin names no links itself; a plugin-wide hint makes it read its containers' NICs.
  if (ids.isContainerVeth(name)) hints.push({ plugin: lxcPlugin, source, what });
  return hints;
}

/**
 * A route line, `198.18.6.0/24 dev br0 scope link`. Routes the kernel makes for an address or a
 * link (a type word first, `proto kernel`, `table local`) are not op's: the address or link
 * change that made them already gave its hint. A route whose destination is not spelled the way
 * the plugin's ids spell it (a bare host address) gives a plugin-wide hint.
 */
function routeHints(rest: string, verb: string, ids: SourceIds): Hint[] {
  const match = /^(\S+) (?:via \S+ )?dev (\S+)/.exec(rest);
  if (!match?.[1] || !match[2] || !linkName.test(match[2])) return [];
  if (/ proto kernel\b| table local\b/.test(rest)) return [];
  const [, to, dev] = match;
  if (/^(?:local|broadcast|multicast|anycast|unreachable|blackhole|prohibit|throw|nat)$/.test(to))
    return [];
  const family = to.includes(":") || / pref (?:low|medium|high)\b/.test(rest) ? 6 : 4;
  const what = `route ${to} dev ${dev} ${verb}`;
  const spelled = to === "default" || /^[0-9a-fA-F.:]+\/\d{1,3}$/.test(to);
  return spelled
    ? [{ plugin: networkPlugin, id: ids.route({ to, dev, family }), source, what }]
    : [{ plugin: networkPlugin, source, what }];
}

/** The `ip monitor` source, in the namespace `netns` when given (tests, a file's namespace). */
export function ipSource(ids: SourceIds, netns?: string): HintSource {
  return {
    name: source,
    plugins: [networkPlugin, lxcPlugin],
    hints(): Observable<Hint> {
      const args = [
        ...(netns === undefined ? [] : ["-n", netns]),
        "-o",
        "monitor",
        "label",
        "link",
        "address",
        "route",
      ];
      return followLines("ip", args).pipe(
        map((line) => ipMonitorHints(line, ids)),
        filter((hints) => hints.length > 0),
        mergeMap((hints) => hints),
      );
    },
  };
}
