/**
 * op rollback on real netlink and nftables, through the built binary inside a namespace: a run
 * that moves the uplink's address and default route to another bridge, moves a port between
 * bridges, creates a veth pair and replaces an nft table is undone, and the namespace's
 * `ip -j addr/link/route` and `nft -j list ruleset` are then what they were before that run,
 * byte for byte once normalised (nft's handles and counters, the kernel's asynchronous
 * operstate). The undo is refused when the run's resources were changed since, unless --force,
 * and a second undo of the same run is refused. With --rollback-on-failure, a run whose nft
 * table (or route) the kernel refuses late in the plan is undone at once.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { before, createRollbackLab, moved, type RollbackLab } from "./support/rollback.js";

let lab: RollbackLab;

beforeEach(() => {
  lab = createRollbackLab();
});

afterEach(() => lab.remove());

describe("op rollback", () => {
  it("undoes a run that moved the uplink, a port, a new veth and a table, byte for byte", () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const run = lab.apply("moved.json", moved, "--allow-uplink");
    const during = lab.dump();
    expect(during).not.toBe(was);
    expect(during).toContain("oprb-cp");

    const undo = JSON.parse(lab.op(["rollback", run.slice(0, 8), "--json"]).stdout) as {
      run: string;
      file: string;
      converged: boolean;
      outcomes: { kind: string; id: string; status: string }[];
    };
    expect(undo.converged).toBe(true);
    expect(undo.file).toBe(`rollback of run ${run}`);
    expect(undo.outcomes.every((o) => o.status === "ok")).toBe(true);
    expect(undo.outcomes.map((o) => `${o.kind} ${o.id}`)).toContain("delete oprb-c");
    expect(lab.dump()).toBe(was);

    // The undo is a run of its own, whose pre-image record names the run it undid.
    const log = lab.op(["ledger", "log"]).stdout;
    expect(log).toContain(undo.run.slice(0, 8));
    const again = lab.sandbox.op(["rollback", run], { netns: lab.netns.name });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`already undone by run ${undo.run}`);
    // And it can itself be undone: the host is back as the run left it (oprb-c made again,
    // with a new index and MAC), so planning that run's file finds nothing to do.
    lab.op(["rollback", undo.run]);
    const plan = JSON.parse(lab.op(["plan", lab.write("moved.json", moved), "--json"]).stdout) as {
      actions: unknown[];
    };
    expect(plan.actions).toEqual([]);
  });

  it("refuses to undo a run whose resources changed since, unless --force", () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const run = lab.apply("moved.json", moved, "--allow-uplink");
    lab.netns.run("ip", ["addr", "add", "198.18.42.1/24", "dev", "oprb-b"]);
    lab.netns.run("nft", ["add", "element", "inet", "oprb_t", "oprb_s", "{ 198.18.41.9 }"]);

    const refused = lab.sandbox.op(["rollback", run], { netns: lab.netns.name });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("2 of its resources changed since it ran");
    expect(refused.stderr).toContain("network /interfaces/oprb-b/ipv4/addresses");
    expect(refused.stderr).toContain("nftables /tables/inet/oprb_t/sets");
    // Nothing was changed: the hand-made address is still there.
    expect(lab.netns.run("ip", ["-j", "addr", "show", "oprb-b"])).toContain("198.18.42.1");

    lab.op(["rollback", run, "--force"]);
    expect(lab.dump()).toBe(was);
  });

  it("--rollback-on-failure undoes the network changes made before an nft rule late in the plan failed", () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const failing = structuredClone(moved);
    // `iif` resolves its interface when the table loads: nft's check passes, the load fails.
    const table = failing.plugins.nftables.tables[0] as { chains: { rules: string[] }[] };
    (table.chains[0] as { rules: string[] }).rules = ['iif "oprb-nope" accept'];
    const path = lab.write("failing.json", failing);
    const result = lab.sandbox.op(["apply", path, "--allow-uplink", "--rollback-on-failure"], {
      netns: lab.netns.name,
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/ok {6}modify network link oprb-b/);
    expect(result.stdout).toMatch(/failed {2}modify nftables table inet\/oprb_t/);
    expect(result.stderr).toContain("undoing what it did (--rollback-on-failure)");
    expect(lab.dump()).toBe(was);
  });

  it("--rollback-on-failure undoes a run whose route the kernel refused", () => {
    lab.apply("before.json", before);
    const was = lab.dump();
    const failing = structuredClone(moved);
    // A gateway on no link's subnet: the kernel refuses the route, which comes after the links.
    failing.plugins.network.routes.push({
      to: "198.18.60.0/24",
      via: "198.18.99.1",
      dev: "oprb-b",
    });
    const path = lab.write("failing.json", failing);
    const result = lab.sandbox.op(["apply", path, "--allow-uplink", "--rollback-on-failure"], {
      netns: lab.netns.name,
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/failed {2}create network route 198\.18\.60\.0\/24 dev oprb-b/);
    expect(lab.dump()).toBe(was);
  });

  it("names what it cannot find", () => {
    const none = lab.sandbox.op(["rollback", "0123abcd"], { netns: lab.netns.name });
    expect(none.stderr).toContain("there is no ledger");
    lab.apply("before.json", before);
    const unknown = lab.sandbox.op(["rollback", "0123abcd"], { netns: lab.netns.name });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("no run 0123abcd");
    const bad = lab.sandbox.op(["rollback", "not a run"], { netns: lab.netns.name });
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain("is not a run id");
  });
});
