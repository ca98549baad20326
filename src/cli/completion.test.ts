import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSettings } from "../host/settings.js";
import { createRegistry } from "../registry.js";
import { commandTree, completionScript, shells } from "./completion.js";
import { buildProgram } from "./program.js";

// The program as op builds it; no command runs, so no plugin is needed.
const program = () =>
  buildProgram(
    () => {},
    createRegistry([]),
    () => loadSettings({}),
  );

const scratch = mkdtempSync(join(tmpdir(), "optest-pkg-completion-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What bash's completion offers for the words of a command line (the last is being typed). */
function bashOffers(script: string, words: string[]): string[] {
  const file = join(scratch, "op.bash");
  writeFileSync(file, script);
  const line = words.map((word) => `'${word}'`).join(" ");
  const result = spawnSync(
    "bash",
    [
      "-c",
      `source "$1"; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _op; printf '%s\\n' "\${COMPREPLY[@]}"`,
      "_",
      file,
    ],
    { encoding: "utf8" },
  );
  expect(result.stderr).toBe("");
  return result.stdout.split("\n").filter((word) => word !== "");
}

describe("op completion", () => {
  it("gives a bash script that bash parses", () => {
    const result = spawnSync("bash", ["-n"], {
      input: completionScript("bash", program()),
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("names every command and subcommand of the program in every shell's script", () => {
    const built = program();
    const names = commandTree(built).flatMap((node) => node.children.map((child) => child.name));
    const expected = built.commands.flatMap((command) => [
      command.name(),
      ...command.commands.map((sub) => sub.name()),
    ]);
    expect(expected).toEqual(expect.arrayContaining(["apply", "ledger", "verify", "completion"]));
    for (const shell of shells) {
      const script = completionScript(shell, built);
      for (const name of expected) expect(script, `${shell}: ${name}`).toContain(name);
    }
    expect(names).toEqual(expect.arrayContaining(expected));
  });

  it("completes commands, subcommands, options and option values in bash", () => {
    const script = completionScript("bash", program(), { "--plugin": ["network", "nftables"] });
    expect(bashOffers(script, ["op", "le"])).toEqual(["ledger"]);
    expect(bashOffers(script, ["op", "ledger", "ve"])).toEqual(["verify"]);
    // A global option's value is skipped when finding the command.
    expect(bashOffers(script, ["op", "--ledger", "/x", "inv"])).toEqual(["inventory"]);
    expect(bashOffers(script, ["op", "inventory", "--format", ""])).toEqual([
      "yaml",
      "ini",
      "json",
    ]);
    expect(bashOffers(script, ["op", "query", "--plugin", "n"])).toEqual(["network", "nftables"]);
    const applyOptions = bashOffers(script, ["op", "apply", "--"]);
    expect(applyOptions).toEqual(expect.arrayContaining(["--check", "--lock-timeout", "--json"]));
    // One --help: the command's own stands for the program's.
    expect(applyOptions.filter((option) => option === "--help")).toHaveLength(1);
    expect(bashOffers(script, ["op", "ledger", "log", "--"])).not.toContain("--check");
  });

  it("completes a command added later, with no edit to the generator", () => {
    const built = program();
    built.command("frobnicate").description("a command made up here").option("--sprocket <n>");
    expect(bashOffers(completionScript("bash", built), ["op", "frob"])).toEqual(["frobnicate"]);
    expect(bashOffers(completionScript("bash", built), ["op", "frobnicate", "--sp"])).toEqual([
      "--sprocket",
    ]);
    expect(completionScript("fish", built)).toContain(
      "-a 'frobnicate' -d 'a command made up here'",
    );
    expect(completionScript("zsh", built)).toContain("'frobnicate' 'a command made up here'");
  });

  it("offers file names for a state file argument and none for a switch's next word", () => {
    const script = completionScript("bash", program());
    writeFileSync(join(scratch, "host-state.json"), "{}");
    expect(bashOffers(script, ["op", "apply", join(scratch, "host-")])).toEqual([
      join(scratch, "host-state.json"),
    ]);
    expect(bashOffers(script, ["op", "doctor", join(scratch, "host-")])).toEqual([]);
  });

  // zsh and fish are installed by `scripts/setup.sh --tests` (so CI runs these); a machine
  // set up without --tests may lack them.
  const has = (shell: string) => spawnSync(shell, ["-c", "true"]).status === 0;

  it.runIf(has("zsh"))("gives a zsh script that zsh parses and that completes", () => {
    const file = join(scratch, "_op");
    writeFileSync(file, completionScript("zsh", program()));
    expect(spawnSync("zsh", ["-n", file], { encoding: "utf8" }).status).toBe(0);
    // zsh's completion builtins replaced by ones that print what they are given.
    const offers = (words: string[]) =>
      spawnSync(
        "zsh",
        [
          "-fc",
          `compdef() {}; _describe() { print -l -- "\${(@P)4}" }; compadd() { shift; print -l -- "$@" }
           _files() { print FILES }; _message() {}; source "$1"
           words=(${words.map((word) => `'${word}'`).join(" ")}); CURRENT=${words.length}; PREFIX='${words.at(-1)}'; _op`,
          "_",
          file,
        ],
        { encoding: "utf8" },
      ).stdout.split("\n");
    // name:description, the description being the command's or option's own help line.
    const names = (words: string[]) => offers(words).map((line) => line.split(":")[0]);
    const show = program()
      .commands.find((command) => command.name() === "ledger")
      ?.commands.find((command) => command.name() === "show");
    expect(offers(["op", "ledger", ""])).toContain(`show:${show?.description()}`);
    expect(names(["op", "ledger", ""])).toContain("verify");
    expect(offers(["op", "inventory", "--format", ""])).toEqual(["yaml", "ini", "json", ""]);
    expect(names(["op", "apply", "--"])).toEqual(expect.arrayContaining(["--check", "--plugin"]));
    expect(offers(["op", "apply", ""])).toContain("FILES");
  });

  it.runIf(has("fish"))("gives a fish script that fish parses and that completes", () => {
    const file = join(scratch, "op.fish");
    writeFileSync(file, completionScript("fish", program()));
    expect(spawnSync("fish", ["-n", file], { encoding: "utf8" }).status).toBe(0);
    const offers = (line: string) =>
      spawnSync("fish", ["-c", `source $argv[1]; complete -C '${line}'`, file], {
        encoding: "utf8",
      })
        .stdout.split("\n")
        .map((entry) => entry.split("\t")[0]);
    expect(offers("op led")).toEqual(["ledger", ""]);
    expect(offers("op ledger ")).toContain("rotate-key");
    expect(offers("op inventory --format ")).toEqual(["ini", "json", "yaml", ""]);
    expect(offers("op apply --ch")).toEqual(["--check", ""]);
  });
});
