/**
 * op deletes or replaces only the tables it created (they carry its comment) or that the file
 * adopts: another tool's table is planned as an adopt, which the engine refuses before anything
 * changes, and apply checks again. Real nft, in a network
 * namespace of the test that holds one table of op's and one of another tool.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adoptionProblems } from "../../src/engine/reconcile.js";
import type { OpError } from "../../src/errors.js";
import type { Ctx } from "../../src/plugin.js";
import { quietCtx } from "../../test/support/engine.js";
import { rejection } from "../../test/support/errors.js";
import { createNetns, type TestNetns } from "../../test/support/netns.js";
import { nftablesRunner } from "../../test/support/nftables.js";
import { applyNftables } from "./apply.js";
import { diffNftables } from "./diff.js";
import { prepareNftables } from "./prepare.js";
import { queryNftables } from "./query.js";
import type { NftAction, NftLive } from "./types.js";

let netns: TestNetns;
let ctx: Ctx;
let live: NftLive;

const nft = (...args: string[]): string => netns.run("nft", args);

beforeAll(async () => {
  netns = createNetns("nft-own");
  ctx = quietCtx({ exec: nftablesRunner(netns.name) });
  // The other tool's table carries op's words on a chain and a rule, never on the table.
  netns.run(
    "nft",
    ["-f", "-"],
    [
      "table inet theirs {",
      '  chain c { comment "managed by op"; tcp dport 22 accept comment "managed by op"; }',
      "}",
      'table inet ours { comment "managed by op"; chain c { tcp dport 22 accept; }; }',
    ].join("\n"),
  );
  live = await queryNftables(ctx);
});
afterAll(() => netns?.remove());

async function refusal(promise: Promise<unknown>): Promise<OpError> {
  const error = await rejection(promise);
  expect(error.code).toBe("invalid-state");
  return error;
}

const absent = (name: string, fields: Record<string, unknown> = {}) => ({
  family: "inet",
  name,
  ensure: "absent",
  ...fields,
});

describe("ensure: absent on a table op did not create", () => {
  it("is planned as an adopt the engine refuses, naming only the foreign table, unless the file adopts it", async () => {
    const actions = diffNftables(
      await prepareNftables({ tables: [absent("ours"), absent("theirs")] }, live, ctx),
      live,
    );
    expect(actions.map((a) => [`${a.kind} ${a.id}`, a.adopt])).toEqual([
      ["delete inet/ours", undefined],
      ["delete inet/theirs", { path: "/plugins/nftables/tables/1", allowed: false }],
    ]);
    expect(adoptionProblems(actions, { allowUplink: false })).toEqual([
      {
        path: "/plugins/nftables/tables/1",
        message:
          "nftables table inet/theirs exists and op did not create it, so op will not delete it unless it is adopted",
        hint: 'add "adopt": true to its entry in the file, or run with --adopt to adopt every object the file names; nothing was changed',
      },
    ]);
    // --adopt adopts it as the entry's adopt: true does.
    expect(adoptionProblems(actions, { allowUplink: false, adopt: true })).toEqual([]);

    const adopted = diffNftables(
      await prepareNftables(
        { tables: [absent("ours"), absent("theirs", { adopt: true })] },
        live,
        ctx,
      ),
      live,
    );
    expect(adopted.map((a) => [`${a.kind} ${a.id}`, a.adopt])).toEqual([
      ["delete inet/ours", undefined],
      ["delete inet/theirs", { path: "/plugins/nftables/tables/1", allowed: true }],
    ]);
    expect(adoptionProblems(adopted, { allowUplink: false })).toEqual([]);
  });

  it("is not refused for a table that is not on the host", async () => {
    const desired = await prepareNftables({ tables: [absent("nothere")] }, live, ctx);
    expect(diffNftables(desired, live)).toEqual([]);
  });
});

describe("replacing a table", () => {
  const section = (name: string, fields: Record<string, unknown> = {}) => ({
    tables: [
      { family: "inet", name, chains: [{ name: "c", rules: ["tcp dport 80 accept"] }], ...fields },
    ],
  });
  const modifyOf = async (name: string, fields?: Record<string, unknown>): Promise<NftAction> => {
    const actions = diffNftables(await prepareNftables(section(name, fields), live, ctx), live);
    expect(actions.map((a) => `${a.kind} ${a.id}`)).toEqual([`modify inet/${name}`]);
    return actions[0] as NftAction;
  };

  it("leaves another tool's table as it was, unless the file adopts it", async () => {
    const before = nft("list", "table", "inet", "theirs");
    const error = await refusal(applyNftables(await modifyOf("theirs"), ctx));
    expect(error.message).toBe(
      'table inet/theirs exists and was not created by op (it lacks comment "managed by op"), so op will not replace it',
    );
    expect(error.hint).toBe(
      'to hand the table to op, add "adopt": true to it in the file (or run with --adopt); its current contents will then be replaced',
    );
    expect(error.context).toEqual({ plugin: "nftables", phase: "apply", id: "inet/theirs" });
    expect(nft("list", "table", "inet", "theirs")).toBe(before);

    await applyNftables(await modifyOf("theirs", { adopt: true }), ctx);
    expect(nft("list", "table", "inet", "theirs")).toMatch(
      /comment "managed by op"[\s\S]*dport 80/,
    );
  });

  it("creates the table when it went away since the plan", async () => {
    nft("add", "table", "inet", "vanishing");
    live = await queryNftables(ctx);
    const action = await modifyOf("vanishing");
    nft("delete", "table", "inet", "vanishing");
    await applyNftables(action, ctx);
    expect(nft("list", "table", "inet", "vanishing")).toMatch(
      /comment "managed by op"[\s\S]*dport 80/,
    );
  });

  it("replaces a table op created", async () => {
    await applyNftables(await modifyOf("ours"), ctx);
    expect(nft("list", "table", "inet", "ours")).toMatch(/dport 80 accept/);
  });
});
