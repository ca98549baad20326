/**
 * Network namespaces for system tests: each test gets its own, with a unique prefixed name,
 * so nothing it does reaches the host's links, routes or nftables ruleset.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface TestNetns {
  name: string;
  /** Runs a command inside the namespace and returns its stdout (throws on failure). */
  run(command: string, args: string[], input?: string): string;
  remove(): void;
}

/** `prefix`: the test's own, when its brief asks for one (`opex` for the export tests). */
export function createNetns(purpose: string, prefix = "opt"): TestNetns {
  const name = `${prefix}-${purpose}-${randomBytes(3).toString("hex")}`;
  execFileSync("ip", ["netns", "add", name]);
  return {
    name,
    run: (command, args, input) =>
      execFileSync("ip", ["netns", "exec", name, command, ...args], {
        encoding: "utf8",
        ...(input === undefined ? {} : { input }),
      }),
    remove: () => execFileSync("ip", ["netns", "delete", name]),
  };
}
