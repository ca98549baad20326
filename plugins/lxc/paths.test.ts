/**
 * The decisions that stand between a state file and `rm -rf` of a host directory, and between
 * a container and the host's own directories: each condition has a case that fails if flipped.
 */
import { describe, expect, it } from "vitest";
import { hostPathExposure, humanBytes, isWithin, removalRefusal } from "./paths.js";

const opDirs = ["/var/lib/op", "/etc/op", "/run/op", "/var/cache/op", "/srv/op-ledger"];

describe("isWithin", () => {
  it("is true for the directory itself and what is below it, not for a sibling with the same prefix", () => {
    expect(isWithin("/srv/a", "/srv/a")).toBe(true);
    expect(isWithin("/srv/a/b", "/srv/a")).toBe(true);
    expect(isWithin("/srv/ab", "/srv/a")).toBe(false);
    expect(isWithin("/srv", "/srv/a")).toBe(false);
    expect(isWithin("/anything", "/")).toBe(true);
  });
});

describe("removalRefusal", () => {
  it("allows a directory of its own below a shared one", () => {
    expect(removalRefusal("/srv/app-scratch", opDirs, [])).toBeUndefined();
    expect(removalRefusal("/tmp/optest-x", opDirs, [])).toBeUndefined();
    expect(removalRefusal("/var/lib/app", opDirs, [])).toBeUndefined();
  });

  it("refuses / and every shared directory, and their parents", () => {
    // Each shared directory by name: the refusal must name it ("it is /mnt"), so emptying one
    // entry of the list fails here even though "/" would still hold it.
    for (const dir of [
      "/home",
      "/srv",
      "/opt",
      "/tmp",
      "/mnt",
      "/media",
      "/var/log",
      "/var/cache",
      "/var/tmp",
    ])
      expect(removalRefusal(dir, [], []), dir).toBe(`${dir} is a system directory (it is ${dir})`);
    // These hold a host tree (/var/lib/incus), which is named first.
    for (const dir of ["/var", "/var/lib"])
      expect(removalRefusal(dir, [], []), dir).toBe(
        `${dir} is a system directory (it holds /var/lib/incus)`,
      );
    expect(removalRefusal("/", opDirs, [])).toMatch(/^\/ is a system directory \(it (is|holds) /);
  });

  it("names the shared directory a refused directory is", () => {
    expect(removalRefusal("/home", opDirs, [])).toBe("/home is a system directory (it is /home)");
    expect(removalRefusal("/var/log", opDirs, [])).toBe(
      "/var/log is a system directory (it is /var/log)",
    );
  });

  it("refuses the host's trees, what is inside them and what holds them", () => {
    expect(removalRefusal("/etc", opDirs, [])).toBe("/etc is a system directory (it is /etc)");
    expect(removalRefusal("/etc/app", opDirs, [])).toBe(
      "/etc/app is a system directory (it is inside /etc)",
    );
    expect(removalRefusal("/usr/local", opDirs, [])).toBe(
      "/usr/local is a system directory (it is inside /usr)",
    );
    expect(removalRefusal("/var/lib/incus", opDirs, [])).toBe(
      "/var/lib/incus is a system directory (it is /var/lib/incus)",
    );
    expect(removalRefusal("/var/lib/incus/storage-pools", opDirs, [])).toMatch(
      /inside \/var\/lib\/incus/,
    );
  });

  it("refuses op's own directories, wherever they were moved, and what holds them", () => {
    expect(removalRefusal("/srv/op-ledger", opDirs, [])).toBe(
      "/srv/op-ledger is a system directory (it is /srv/op-ledger)",
    );
    expect(removalRefusal("/srv/op-ledger/x", opDirs, [])).toMatch(/inside \/srv\/op-ledger/);
    expect(removalRefusal("/var/cache/op", opDirs, [])).toMatch(/it is \/var\/cache\/op/);
    expect(removalRefusal("/srv/op-ledger", [], [])).toBeUndefined();
  });

  it("refuses a directory at or above another instance's mount, not one beside it", () => {
    const others = [{ instance: "ct2", source: "/srv/shared/data" }];
    expect(removalRefusal("/srv/shared/data", opDirs, others)).toBe(
      "/srv/shared/data is a mount of ct2 (/srv/shared/data)",
    );
    expect(removalRefusal("/srv/shared", opDirs, others)).toBe(
      "/srv/shared holds a mount of ct2 (/srv/shared/data)",
    );
    expect(removalRefusal("/srv/shared-other", opDirs, others)).toBeUndefined();
    expect(removalRefusal("/srv/shared/data/sub", opDirs, others)).toBeUndefined();
  });

  it("refuses a relative path", () => {
    expect(removalRefusal("srv/x", opDirs, [])).toBe("srv/x is not an absolute path");
  });
});

describe("hostPathExposure", () => {
  it("names what a read-write mount would expose", () => {
    expect(hostPathExposure("/", opDirs)).toBe("it holds /etc");
    expect(hostPathExposure("/var", opDirs)).toBe("it holds /var/lib/incus");
    expect(hostPathExposure("/etc/ssh", opDirs)).toBe("it is inside /etc");
    expect(hostPathExposure("/srv/op-ledger", opDirs)).toBe("it is /srv/op-ledger");
    expect(hostPathExposure("/srv/data", opDirs)).toBeUndefined();
    expect(hostPathExposure("/home/alice/data", opDirs)).toBeUndefined();
  });
});

describe("humanBytes", () => {
  it("says sizes as a person reads them", () => {
    expect(humanBytes(0)).toBe("0 B");
    expect(humanBytes(1023)).toBe("1023 B");
    expect(humanBytes(4096)).toBe("4.0 KiB");
    expect(humanBytes(1.5 * 1024 ** 3)).toBe("1.5 GiB");
  });
});
