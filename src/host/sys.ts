/**
 * The kernel's file interfaces op reads (sysfs, procfs, cgroupfs, pid files), behind one
 * interface with a root directory: the host's is `/`, a test's is a fixture tree laid out the
 * same way. Reads only, and synchronous on purpose: these files never wait on a disk, and on
 * the thread pool they would queue behind whatever else a run has started (the ledger opening).
 * A file that is missing or unreadable reads as nothing: links and processes come and go.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";

/** A network link of the namespace op works in, as sysfs shows it. */
export interface SysLink {
  name: string;
  /** The bridge (Linux) it is a port of; "ovs-system" for a kernel-datapath OVS port. */
  master?: string;
}

/** A namespace's identity: two paths name the same namespace when both numbers agree. */
export interface NamespaceId {
  dev: number;
  ino: number;
}

export interface Sys {
  /** Where `/` is: the host's root, or a fixture tree. */
  readonly root: string;
  /** A file's text, or undefined when it cannot be read. */
  text(path: string): string | undefined;
  /** Whether anything (a file, a directory, a socket) is at `path`. */
  exists(path: string): boolean;
  /** The names in a directory; none when it cannot be read. */
  list(dir: string): string[];
  /** A link by name; undefined when there is none (or the name could not be one). */
  link(name: string): SysLink | undefined;
  /** The name of the link with this ifindex (a scan of every link). */
  linkNameByIndex(index: number): string | undefined;
  /** The names of the Linux bridges. */
  linuxBridges(): string[];
  /** The pid of a running Incus container's init, from its cgroup (v1, hybrid or v2). */
  containerPid(container: string): number | undefined;
  /** `/proc/PID/PATH` as text, "" when it cannot be read. */
  procText(pid: number, path: string): string;
  /** The network namespace of a process (`self` for op's own). */
  netnsOfProcess(pid: number | "self"): NamespaceId | undefined;
  /** A named network namespace (`ip netns add NAME`, under /run/netns). */
  namedNetns(name: string): NamespaceId | undefined;
}

const classNet = "/sys/class/net";
/** Where each cgroup layout keeps Incus's containers (lxc.payload.NAME). */
const cgroupBases = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

/** The kernel's files under `root` (default: the host's). */
export function createSys(root = "/"): Sys {
  const at = (path: string) => join(root, path);
  const text = (path: string): string | undefined => {
    try {
      return readFileSync(at(path), "utf8");
    } catch {
      return undefined;
    }
  };
  const identity = (path: string): NamespaceId | undefined => {
    try {
      const { dev, ino } = statSync(at(path));
      return { dev, ino };
    } catch {
      return undefined;
    }
  };
  const names = (dir: string): string[] => {
    try {
      return readdirSync(at(dir));
    } catch {
      return [];
    }
  };
  // A name with a slash or a dot-only name would leave the directory of links.
  const linkName = (name: string) =>
    name !== "" && !name.includes("/") && name !== "." && name !== "..";
  return {
    root,
    text,
    exists: (path) => existsSync(at(path)),
    list: names,
    link(name) {
      if (!linkName(name) || !existsSync(at(`${classNet}/${name}/ifindex`))) return undefined;
      try {
        const master = readlinkSync(at(`${classNet}/${name}/master`))
          .split("/")
          .pop();
        return master === undefined || master === "" ? { name } : { name, master };
      } catch {
        return { name };
      }
    },
    linkNameByIndex(index) {
      return names(classNet).find(
        (name) => Number(text(`${classNet}/${name}/ifindex`)?.trim() ?? Number.NaN) === index,
      );
    },
    linuxBridges() {
      return names(classNet).filter((name) => existsSync(at(`${classNet}/${name}/bridge`)));
    },
    containerPid(container) {
      if (!linkName(container)) return undefined;
      for (const base of cgroupBases) {
        const first = text(`${base}/lxc.payload.${container}/cgroup.procs`)?.split("\n")[0];
        if (first) return Number(first);
      }
      return undefined;
    },
    procText(pid, path) {
      return text(`/proc/${pid}/${path}`) ?? "";
    },
    netnsOfProcess(pid) {
      return identity(`/proc/${pid}/ns/net`);
    },
    namedNetns(name) {
      return linkName(name) ? identity(`/run/netns/${name}`) : undefined;
    },
  };
}

/** Whether two namespace identities name the same namespace. */
export function sameNamespace(a: NamespaceId, b: NamespaceId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
