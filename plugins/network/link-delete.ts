/**
 * Deleting many links at once. The kernel unregisters each `link del` on its own and waits
 * for an RCU grace period every time (~20 ms a link here: 200 veths took 5.4 s), while
 * `ip link del group N` unregisters a whole link group together (the same 200 in ~60 ms).
 * So the link deletes of a run that arrive together are moved into a link group no live link
 * uses, and the group is deleted in one request. A few links go the plain way (`link del`
 * lines through the shared `ip -batch`, batch.ts): below `groupFrom` the extra reads cost
 * more than the grace periods they save (docs/benchmarks.md).
 *
 * A group number is the kernel's, shared with every other tool: op reads the namespace's
 * groups first and picks an unused one from a high range, checks right before the delete that
 * the group holds exactly its links, and afterwards that no link it did not plan went with
 * them. The run holds the host lock, so another op cannot race it; another tool could.
 */
import { randomInt } from "node:crypto";
import { OpError } from "../../src/errors.js";
import type { Runner } from "../../src/exec.js";
import type { Logger } from "../../src/plugin.js";
import { type IpLine, ipBatcher, ipWord } from "./batch.js";

/** The "already gone" errors of `link del`: a veth's peer went with it, say. */
const linkGone = /Cannot find device|No such device|does not exist/;

/** The plain delete of one link; gone already counts as done (a peer deleted first). */
export function linkDelLine(name: string): IpLine {
  return { text: `link del dev ${ipWord(name)}`, tolerate: linkGone };
}

/**
 * From this many links that arrive together the group path is taken. Its five `ip` processes
 * cost ~60 ms whatever the count; a `link del` ~20 ms a link (docs/benchmarks.md).
 */
export const groupFrom = 4;

/**
 * Where op picks its group numbers: far from 0 ("default", every link's) and from the small
 * numbers people name in /etc/iproute2/group; iproute2 takes a group as a signed 32-bit int.
 */
export const groupRange = { min: 0x40000000, max: 0x7fffffff } as const;

export interface LinkDeleter {
  /** Deletes link `name` (the action `id`); resolves when it is gone, whoever deleted it. */
  delete(id: string, name: string): Promise<void>;
}

export interface LinkDeleterOptions {
  log?: Logger;
  /** From how many links the group path is taken (default groupFrom; the bench measures both). */
  groupFrom?: number;
  /** Picks the group from the numbers in use (default: at random in groupRange). */
  pickGroup?: (used: ReadonlySet<number>) => number | Promise<number>;
}

interface Request {
  id: string;
  name: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A link as `ip -N -j link show` prints it (iproute2 6.1 prints `{}` for a filtered-out one). */
interface ShownLink {
  ifname?: string;
  group?: string;
  /** A veth's peer, a macvlan's base: the kernel deletes the one with the other. */
  link?: string;
}

const deleters = new WeakMap<Runner, LinkDeleter>();

/** One deleter per runner (i.e. per network namespace), shared by all of a run's actions. */
export function linkDeleter(runner: Runner, options: LinkDeleterOptions = {}): LinkDeleter {
  let deleter = deleters.get(runner);
  if (!deleter) {
    deleter = createLinkDeleter(runner, options);
    deleters.set(runner, deleter);
  }
  return deleter;
}

/**
 * Deletes that arrive while a round is running (or in the same turn of the event loop) make
 * the next round, as in batch.ts: the engine starts a wave's actions together.
 */
export function createLinkDeleter(runner: Runner, options: LinkDeleterOptions = {}): LinkDeleter {
  const queue: Request[] = [];
  const from = options.groupFrom ?? groupFrom;
  let draining = false;
  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const round = queue.splice(0);
      try {
        await (round.length >= from
          ? deleteAsGroup(runner, round, options)
          : deleteEach(runner, round));
      } catch (error) {
        // Settling a settled promise does nothing: this reaches only the requests left open.
        for (const r of round) r.reject(error);
      }
    }
    draining = false;
  };
  return {
    delete(id, name) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ id, name, resolve, reject });
        if (!draining) {
          draining = true;
          setImmediate(() => void drain());
        }
      });
    },
  };
}

/** The plain way: one `link del` line each, gone links tolerated (a peer deleted first). */
async function deleteEach(runner: Runner, requests: readonly Request[]): Promise<void> {
  const batcher = ipBatcher(runner);
  await Promise.all(
    requests.map((r) => batcher.submit(r.id, [linkDelLine(r.name)]).then(r.resolve, r.reject)),
  );
}

async function deleteAsGroup(
  runner: Runner,
  requests: readonly Request[],
  options: LinkDeleterOptions,
): Promise<void> {
  let before: ShownLink[];
  try {
    before = await showLinks(runner);
  } catch (error) {
    for (const r of requests) r.reject(error);
    return;
  }
  const byName = new Map(before.map((l) => [l.ifname, l]));
  const present = requests.filter((r) => byName.has(r.name));
  for (const r of requests) if (!byName.has(r.name)) r.resolve();
  if (present.length < (options.groupFrom ?? groupFrom)) return deleteEach(runner, present);

  const used = new Set(before.map(groupOf));
  const group = await (options.pickGroup ?? randomGroup)(used);
  if (used.has(group) || group === 0) {
    throw new Error(`bug: link group ${group} picked for deletes is in use`);
  }
  // Each link joins the group as its own job, so one the kernel refuses fails alone.
  const batcher = ipBatcher(runner);
  const joined = await Promise.allSettled(
    present.map((r) =>
      batcher.submit(r.id, [
        { text: `link set dev ${ipWord(r.name)} group ${group}`, tolerate: linkGone },
      ]),
    ),
  );
  const members: Request[] = [];
  joined.forEach((result, i) => {
    const r = present[i] as Request;
    if (result.status === "fulfilled") members.push(r);
    else r.reject(result.reason);
  });
  if (members.length === 0) return;

  // The group must hold exactly op's links (and the peers among them) when it is deleted.
  const planned = new Set(members.map((r) => r.name));
  let strangers: string[];
  try {
    const inGroup = await showLinks(runner, group);
    strangers = inGroup.map((l) => l.ifname as string).filter((n) => !planned.has(n));
  } catch (error) {
    return fallBack(runner, members, before, group, error, options.log);
  }
  if (strangers.length > 0) {
    return fallBack(
      runner,
      members,
      before,
      group,
      `link group ${group} also holds ${strangers.join(", ")}, which op did not put there`,
      options.log,
    );
  }
  const deleted = await runner.run("ip", ["link", "del", "group", String(group)], { check: false });
  if (deleted.exitCode !== 0) {
    const why = deleted.stderr.trim() || `ip exited with ${deleted.exitCode}`;
    return fallBack(runner, members, before, group, why, options.log);
  }

  let after: ShownLink[];
  try {
    after = await showLinks(runner);
  } catch (error) {
    for (const r of members) r.reject(error);
    return;
  }
  const left = new Map(after.map((l) => [l.ifname, l]));
  for (const r of members) {
    if (!left.has(r.name)) r.resolve();
    else
      r.reject(
        new OpError(
          "apply-failed",
          `link ${r.name} is still there after ip link del group ${group}`,
          {
            hint: "the kernel kept it without an error; delete it by hand and run op apply again",
          },
        ),
      );
  }
  const lost = before
    .map((l) => l.ifname as string)
    .filter((name) => !left.has(name) && !wentWith(planned, before).has(name));
  if (lost.length > 0) {
    options.log?.warn(
      `${lost.join(", ")} went while op deleted link group ${group}, though op did not plan to delete them: ` +
        "another tool put them in that group after op checked it, or deleted them meanwhile",
    );
  }
}

/**
 * The links deleting `planned` takes with it: the planned ones, their veth peers and the links
 * on top of any of those (a macvlan on a peer), as far as they go.
 */
function wentWith(planned: ReadonlySet<string>, links: readonly ShownLink[]): Set<string> {
  const gone = new Set(planned);
  const lower = new Map(links.map((l) => [l.ifname as string, l.link]));
  for (let grew = true; grew; ) {
    grew = false;
    for (const link of links) {
      const name = link.ifname as string;
      if (gone.has(name)) {
        // Two veth ends name each other in `link`: the peer goes with it (a macvlan's base,
        // named the same way, does not).
        const peer = link.link;
        if (peer !== undefined && lower.get(peer) === name && !gone.has(peer)) {
          gone.add(peer);
          grew = true;
        }
      } else if (link.link !== undefined && gone.has(link.link)) {
        gone.add(name);
        grew = true;
      }
    }
  }
  return gone;
}

/**
 * The group could not be deleted as checked: its links go back to their own groups and are
 * deleted one by one, so the run's outcome does not depend on the shortcut.
 */
async function fallBack(
  runner: Runner,
  members: readonly Request[],
  before: readonly ShownLink[],
  group: number,
  why: unknown,
  log: Logger | undefined,
): Promise<void> {
  log?.warn(`not deleting link group ${group} (${String(why)}): deleting its links one by one`);
  const groupBefore = new Map(before.map((l) => [l.ifname, groupOf(l)]));
  const restore = members.map((r) => ({
    text: `link set dev ${ipWord(r.name)} group ${groupBefore.get(r.name) ?? 0}`,
    tolerate: linkGone,
  }));
  await ipBatcher(runner)
    .submit(`link group ${group}`, restore)
    .catch((error: unknown) => log?.warn(`restoring the links' groups: ${String(error)}`));
  await deleteEach(runner, members);
}

async function showLinks(runner: Runner, group?: number): Promise<ShownLink[]> {
  const args = [
    "-N",
    "-j",
    "link",
    "show",
    ...(group === undefined ? [] : ["group", String(group)]),
  ];
  const { stdout } = await runner.run("ip", args);
  return (JSON.parse(stdout) as ShownLink[]).filter((l) => l.ifname !== undefined);
}

function groupOf(link: ShownLink): number {
  return Number(link.group ?? 0);
}

function randomGroup(used: ReadonlySet<number>): number {
  for (;;) {
    const group = randomInt(groupRange.min, groupRange.max + 1);
    if (!used.has(group)) return group;
  }
}
