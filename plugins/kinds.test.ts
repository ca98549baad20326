/**
 * The typed plugin contract (src/plugin.ts) as the plugins use it: every action of every
 * fixture is on a resource kind its plugin declares, no plugin spells another's ids (they
 * come from the owner's ref functions), and a plugin's actions narrow by `resource` and
 * `kind` (the @ts-expect-error lines below are checked by `tsc -p tsconfig.json`: if one
 * stopped being an error, the compile fails).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import type { Action } from "../src/plugin.js";
import type { LxcAction } from "./lxc/types.js";
import { linkRef, ovsDatabaseRef } from "./network/refs.js";
import type { NetworkAction } from "./network/types.js";
import { registry } from "./registry.js";

const root = import.meta.dirname;

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(suffix))
    .map((file) => join(dir, file));
}

/**
 * The string literals of a plugin's source that spell another plugin's id: `other:...` (the
 * old form of a reference) or a shared id the other plugin exports (the OVS database's).
 */
function spelledIds(source: string, plugin: string, plugins: readonly string[]): string[] {
  const literal = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g;
  const others = plugins.filter((other) => other !== plugin);
  const shared = plugin === ovsDatabaseRef.plugin ? [] : [ovsDatabaseRef.id, "ovs:db"];
  return [...source.matchAll(literal)]
    .map((match) => match[0])
    .filter((quoted) => {
      const value = quoted.slice(1, -1);
      return others.some((other) => value.startsWith(`${other}:`)) || shared.includes(value);
    });
}

describe("resource kinds", () => {
  it("every fixture action is on a resource its plugin declares", async () => {
    const plugins = new Map((await registry.load()).map((plugin) => [plugin.name, plugin]));
    let checked = 0;
    for (const name of plugins.keys()) {
      for (const file of filesUnder(join(root, name, "fixtures"), "actions.json")) {
        const actions = JSON.parse(readFileSync(file, "utf8")) as Action[];
        for (const action of actions) {
          const where = `${relative(root, file)}: ${action.kind} ${action.id}`;
          expect(action.plugin, where).toBe(name);
          expect(Object.keys(plugins.get(name)?.resources ?? {}), where).toContain(action.resource);
          for (const ref of [...(action.needs ?? []), ...(action.expects ?? [])]) {
            expect(Object.keys(plugins.get(ref.plugin)?.resources ?? {}), where).toContain(
              ref.resource,
            );
          }
          checked++;
        }
      }
    }
    // Each plugin has fixtures with actions: the loop above is not vacuous.
    expect(checked).toBeGreaterThan(50);
  });

  it("no plugin spells another plugin's ids: they come from the owner's ref functions", async () => {
    const names = (await registry.load()).map((plugin) => plugin.name);
    const found = names.flatMap((name) =>
      filesUnder(join(root, name), ".ts").flatMap((file) =>
        spelledIds(readFileSync(file, "utf8"), name, names).map(
          (literal) => `${relative(root, file)}: ${literal}`,
        ),
      ),
    );
    expect(found).toEqual([]);
  });

  it("finds a spelt id where there is one (the scan above can fail)", () => {
    const names = ["network", "lxc"];
    const old = 'needs.push("network:ovs:db", `network:br0`, "lxc:x");';
    expect(spelledIds(old, "lxc", names)).toEqual(['"network:ovs:db"', "`network:br0`"]);
    expect(spelledIds(`const id = "${ovsDatabaseRef.id}";`, "lxc", names)).toEqual([
      `"${ovsDatabaseRef.id}"`,
    ]);
    // Its own ids, and prose that names Open vSwitch, are fine.
    expect(spelledIds(`"${ovsDatabaseRef.id}"; "network:x"`, "network", names)).toEqual([]);
    expect(spelledIds('"no Open vSwitch bridge"', "lxc", names)).toEqual([]);
  });

  it("narrows an action's payloads by resource and kind, without casts", () => {
    const route: NetworkAction = {
      kind: "create",
      plugin: "network",
      resource: "route",
      id: "198.18.0.0/24 dev br0",
      after: { to: "198.18.0.0/24", family: 4, dev: "br0", metric: 0 },
      reason: "new static route",
      needs: [linkRef("br0")],
    };
    const devOf = (action: NetworkAction): string | undefined => {
      if (action.resource !== "route") return undefined;
      // @ts-expect-error a route action has no link payload
      action.after?.link;
      if (action.kind === "delete") return action.before.dev;
      return action.after.dev;
    };
    expect(devOf(route)).toBe("br0");

    const image = (action: LxcAction): string | undefined => {
      if (action.resource !== "image") return undefined;
      if (action.kind === "delete") {
        // @ts-expect-error an image delete carries the image, not a container
        action.before.container;
        return action.before.alias ?? action.before.image.fingerprint;
      }
      // @ts-expect-error an image's payload is not a container's
      action.after.running;
      return action.after.alias;
    };
    expect(
      image({
        kind: "create",
        plugin: "lxc",
        resource: "image",
        id: "image base",
        after: { alias: "base", path: "/", metadata: "m", rootfs: "r", fingerprint: "f" },
        reason: "import",
      }),
    ).toBe("base");

    const wrongKind: NetworkAction = {
      kind: "create",
      plugin: "network",
      // @ts-expect-error a resource kind the network plugin does not declare
      resource: "container",
      id: "x",
      after: { link: { name: "x", type: "dummy" }, enrol: [] },
      reason: "",
    };
    expect(wrongKind.id).toBe("x");
  });
});
