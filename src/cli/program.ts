/** The command line: every command, its options and its help with examples. */
import { Argument, Command, InvalidArgumentError, Option } from "commander";
import type { Settings } from "../host/settings.js";
import type { PluginRegistry } from "../registry.js";
import { version } from "../version.js";
import type { GlobalOptions } from "./commands.js";
import { completionScript, type Shell, shells } from "./completion.js";
import type { WatchSeams } from "./watch.js";

type SetExit = (code: number) => void;

function integer(name: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || parsed < minimum || parsed > maximum) {
      throw new InvalidArgumentError(
        `${name} must be a whole number from ${minimum} to ${maximum}`,
      );
    }
    return parsed;
  };
}

/** The largest user or group id (2^32 - 2: 2^32 - 1 is the kernel's "no id"). */
const maxId = 4_294_967_294;

/** A number above 0 (fractions allowed: a test resyncs every few seconds). */
function positive(name: string, maximum: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\s*\d*\.?\d+\s*$/.test(value) || !(parsed > 0) || parsed > maximum) {
      throw new InvalidArgumentError(`${name} must be a number above 0, at most ${maximum}`);
    }
    return parsed;
  };
}

/** `COUNT/MINUTES`, e.g. `5/10`: a count from 2 and a window of minutes above 0. */
function flapping(value: string): { count: number; withinMinutes: number } {
  const match = /^\s*(\d+)\s*\/\s*(\d*\.?\d+)\s*$/.exec(value);
  const count = Number(match?.[1]);
  const withinMinutes = Number(match?.[2]);
  if (!match || count < 2 || count > 1000 || !(withinMinutes > 0) || withinMinutes > 24 * 60) {
    throw new InvalidArgumentError(
      "--flapping must be COUNT/MINUTES, e.g. 5/10: a count from 2 to 1000 and minutes above 0, at most a day",
    );
  }
  return { count, withinMinutes };
}

/** `--confirm 120s`: a duration in seconds, minutes or hours, up to a day. */
function confirmDuration(value: string): number {
  const match = /^\s*(\d+)\s*(s|m|h)?\s*$/.exec(value);
  const seconds = Number(match?.[1]) * ({ s: 1, m: 60, h: 3600 }[match?.[2] ?? "s"] ?? 1);
  if (!match || !(seconds >= 1) || seconds > 86_400)
    throw new InvalidArgumentError(
      "--confirm must be a duration such as 120s, 2m or 1h, at most a day",
    );
  return seconds;
}

/** A path option given as '' would mean the current directory: refused. */
function path(name: string) {
  return (value: string): string => {
    if (value.trim() === "") throw new InvalidArgumentError(`${name} must not be empty`);
    return value;
  };
}

const adoptHelp =
  "adopt every object the file names that op did not create, as if each said adopt: true (a first run after op export --all)";
const allowRestartHelp =
  "allow restarting running containers for config Incus reads only at start (raw.lxc, security.privileged...)";

/** More actions at once than this only exhausts file descriptors and processes. */
const maxConcurrency = 1024;
/** A day: a longer wait for the lock is a mistake, not a plan. */
const maxLockTimeout = 86_400;

/** `--plugin NAME`, repeatable: every name given, in order. */
function repeatablePluginOption(description: string): Option {
  return new Option("--plugin <name>", description).argParser(
    (name: string, previous: string[] | undefined) => [...(previous ?? []), name],
  );
}

/** `--plugin` of apply and plan: only those sections of the file are used. */
function onlyPluginOption(): Option {
  return repeatablePluginOption(
    "only this plugin's section of the file (repeatable); the others are left alone",
  );
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`;
}

/**
 * `settings` gives the environment's defaults of the command line being run (read when a
 * command first needs them, so a bad variable fails the command, never `op --help`).
 */
export function buildProgram(
  setExit: SetExit,
  registry: PluginRegistry,
  settings: () => Settings,
  seams?: WatchSeams,
): Command {
  const program = new Command("op")
    .description(
      "Make a Linux host's containers, network and nftables firewall match a state file.",
    )
    .version(`op ${version}`, "-V, --version")
    .option("--json", "print data as JSON")
    .addOption(
      new Option(
        "--ledger <dir>",
        "ledger directory (default $OP_LEDGER or /var/lib/op/ledger)",
      ).argParser(path("--ledger")),
    )
    .addOption(
      new Option(
        "--ledger-key <file>",
        "ledger signing key (default $OP_LEDGER_KEY or /etc/op/ledger.key)",
      ).argParser(path("--ledger-key")),
    )
    .option("-v, --verbose", "print debug messages on stderr")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `${examples("op plan state.json", "op apply state.json", "op apply state.json --check || echo drift", "op query --plugin nftables", "op ledger verify")}
Exit codes: 0 ok, 1 error, 2 drift (apply --check) or changes (plan --detailed-exitcode),
3 ledger verification failed, 64 bad command line, 70 internal error (a bug),
75 another op apply (or --check) holds the lock.`,
    );

  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> => {
      setExit(await action(...args));
    };
  const globals = (command: Command): GlobalOptions => ({
    ...(command.optsWithGlobals() as Omit<GlobalOptions, "settings">),
    settings: settings(),
  });
  const commands = () => import("./commands.js");

  program
    .command("apply")
    .description("apply FILE to the host: plan, change, verify, record in the ledger")
    .argument("<file>", "state file (JSON or YAML), or - to read it from stdin")
    .option(
      "--check",
      "only report drift: exit 0 if the host matches, 2 if not (and record it in the ledger)",
    )
    .addOption(
      new Option("--lock-timeout <seconds>", "wait this long for another op apply")
        .argParser(integer("--lock-timeout", 0, maxLockTimeout))
        .default(0),
    )
    .addOption(
      new Option(
        "--concurrency <n>",
        "actions run at once within a plugin (default: the plugin's own, 8 for most)",
      ).argParser(integer("--concurrency", 1, maxConcurrency)),
    )
    .option("--allow-uplink", "allow changes to the link carrying the default route")
    .option("--allow-restart", allowRestartHelp)
    .option("--adopt", adoptHelp)
    .addOption(
      new Option(
        "--confirm <duration>",
        "roll the run back after DURATION (120s, 2m) unless op confirm comes first",
      ).argParser(confirmDuration),
    )
    .option(
      "--rollback-on-failure",
      "if the run fails part-way or does not converge, undo what it did (op rollback)",
    )
    .addOption(onlyPluginOption())
    .addOption(
      new Option(
        "--metrics-file <path>",
        "after the run, write Prometheus metrics there (node_exporter's textfile collector)",
      ).argParser(path("--metrics-file")),
    )
    .addHelpText(
      "after",
      examples(
        "op apply state.json",
        "op apply state.json --plugin network --plugin nftables  # at boot, before Incus",
        "op apply state.json --check --metrics-file /var/lib/node_exporter/textfile/op.prom",
        "op apply state.json --check            # cron: exit 2 means drift",
        "op apply state.json --lock-timeout 60  # wait for a running apply",
        "op apply state.json --json",
      ),
    )
    .action(
      run(async (file: string, _options: unknown, command: Command) =>
        (await commands()).applyCommand(file, globals(command), registry),
      ),
    );

  program
    .command("watch")
    .description(
      "keep the host matching FILE: apply it, then correct drift as change events come (or observe it)",
    )
    .argument("<file>", "state file (JSON or YAML); SIGHUP re-reads it")
    .option("--observe", "only record drift, correct nothing (each run is op apply --check)")
    .addOption(
      new Option("--debounce <ms>", "quiet time after a resource's last event before a run")
        .argParser(integer("--debounce", 0, 600_000))
        .default(1000),
    )
    .addOption(
      new Option("--resync <minutes>", "full resync every this many minutes (±10%)")
        .argParser(positive("--resync", 24 * 60))
        .default(5),
    )
    .addOption(
      new Option(
        "--flapping <count/minutes>",
        "stop enforcing a resource corrected this many times within this many minutes",
      )
        .argParser(flapping)
        .default({ count: 5, withinMinutes: 10 }, "5/10"),
    )
    .addOption(
      new Option("--log-format <format>", "stderr log lines: key=value text or one JSON object")
        .choices(["text", "json"])
        .default("text"),
    )
    .addOption(
      new Option(
        "--metrics-file <path>",
        "write Prometheus textfile metrics after each run",
      ).argParser(path("--metrics-file")),
    )
    .addOption(
      new Option("--lock-timeout <seconds>", "how long a run waits for another op apply")
        .argParser(integer("--lock-timeout", 0, maxLockTimeout))
        .default(60),
    )
    .option("--allow-restart", allowRestartHelp)
    .addHelpText(
      "after",
      examples(
        "op watch /etc/op/state.json",
        "op watch state.json --observe --log-format json",
        "kill -HUP $(pidof op)   # re-read the file; an invalid one is refused and the old kept",
      ),
    )
    .action(
      run(async (file: string, _o: unknown, command: Command) =>
        (await import("./watch.js")).watchCommand(file, globals(command), registry, seams),
      ),
    );

  // op rollback (src/cli/rollback.ts): undo a run from its pre-image.
  program
    .command("rollback")
    .description(
      "undo a run from the pre-image it recorded, as a new run (planned, verified, recorded)",
    )
    .argument("<run>", "the run's id, or its first 8 or more characters (op ledger log)")
    .option("--force", "undo even if the run's resources changed since, or it was undone already")
    .addOption(
      new Option("--lock-timeout <seconds>", "wait this long for another op apply")
        .argParser(integer("--lock-timeout", 0, maxLockTimeout))
        .default(0),
    )
    .addHelpText("after", examples("op rollback 3df1a2b4", "op rollback 3df1a2b4 --force --json"))
    .action(
      run(async (runId: string, _o: unknown, command: Command) =>
        (await import("./rollback.js")).rollbackCommand(runId, globals(command), registry),
      ),
    );

  program
    .command("confirm")
    .description("keep the run an op apply --confirm made: it will not be rolled back")
    .argument("[run]", "the run awaiting confirmation (default: the one there is)")
    .addHelpText("after", examples("op apply state.json --confirm 120s && op confirm"))
    .action(
      run(async (runId: string | undefined, _o: unknown, command: Command) =>
        (await import("./confirm.js")).confirmCommand(runId, globals(command), registry),
      ),
    );
  // The detached process that keeps an apply's --confirm deadline (src/cli/confirm.ts).
  program
    .command("confirm-deadline")
    .description(
      "(started by op apply --confirm) wait for RUN's deadline, then roll it back unless confirmed",
    )
    .argument("<run>", "the run awaiting confirmation")
    .argument("<deadline>", "the ISO time of its deadline")
    .action(
      run(async (runId: string, deadline: string, _o: unknown, command: Command) =>
        (await import("./confirm.js")).deadlineCommand(runId, deadline, globals(command), registry),
      ),
    );

  program
    .command("plan")
    .description("show what apply would change, without changing anything")
    .argument("<file>", "state file (JSON or YAML), or - to read it from stdin")
    .option("--allow-restart", `plan as apply --allow-restart would: ${allowRestartHelp}`)
    .option("--adopt", `plan as apply --adopt would: ${adoptHelp}`)
    .addOption(onlyPluginOption())
    .addHelpText(
      "after",
      examples(
        "op plan state.json",
        "op plan state.yaml --json",
        "op plan state.json --allow-restart",
      ),
    )
    .action(
      run(async (file: string, _o: unknown, command: Command) =>
        (await commands()).planCommand(file, globals(command), registry),
      ),
    );

  program
    .command("validate")
    .description("check a state file against the schemas; reads nothing on the host")
    .argument("<file>", "state file (JSON or YAML), or - to read it from stdin")
    .addHelpText("after", examples("op validate state.json"))
    .action(
      run(async (file: string, _o: unknown, command: Command) =>
        (await commands()).validateCommand(file, globals(command), registry),
      ),
    );

  program
    .command("schema")
    .description(
      "print the JSON Schema of a whole state file, self-contained, for an editor's completion and checks",
    )
    .addHelpText(
      "after",
      examples("op schema > op.schema.json", "op schema | jq '.definitions | keys'"),
    )
    .action(run(async () => (await commands()).schemaCommand()));

  program
    .command("query")
    .description("show the live state each plugin sees")
    .addOption(repeatablePluginOption("only this plugin (repeatable)"))
    .option(
      "--all",
      "with --json, also what the daemons set for themselves (Incus's volatile keys)",
    )
    .addHelpText(
      "after",
      examples(
        "op query",
        "op query --plugin nftables --json",
        "op query --plugin lxc --json --all",
      ),
    )
    .action(
      run(async (_o: unknown, command: Command) =>
        (await commands()).queryCommand(globals(command), registry),
      ),
    );

  program
    .command("export")
    .description(
      "print the live host as a state file (what op created; --all: everything of op's kinds)",
    )
    .addOption(repeatablePluginOption("only this plugin (repeatable)"))
    .addOption(new Option("--owned", "only the objects op created (the default)").conflicts("all"))
    .addOption(new Option("--all", "also the objects op did not create, of the kinds op manages"))
    .addOption(new Option("--format <format>", "json (default) or yaml").choices(["json", "yaml"]))
    .addOption(
      new Option("-o, --output <file>", "write the file here instead of stdout").argParser(
        path("--output"),
      ),
    )
    .addHelpText(
      "after",
      examples(
        "op export > state.json",
        "op export --plugin network --all --format yaml -o state.yaml",
        "op export > state.json && op plan state.json   # no changes",
      ),
    )
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./export.js")).exportCommand(globals(command), registry),
      ),
    );

  program
    .command("inventory")
    .description(
      "print the file's containers as an Ansible inventory (addresses read live; changes nothing)",
    )
    .argument("[file]", "state file (JSON or YAML), or - to read it from stdin", "state.json")
    .addOption(
      new Option("--format <format>", "yaml (default), ini or json").choices([
        "yaml",
        "ini",
        "json",
      ]),
    )
    .option("--list", "Ansible dynamic inventory: every group and host as JSON")
    .option("--host <name>", "Ansible dynamic inventory: one host's variables as JSON")
    .addHelpText(
      "after",
      examples(
        "op inventory state.json",
        "op inventory state.json --format ini > hosts.ini",
        "op inventory state.json --list",
        "printf '#!/bin/sh\\nexec op inventory /etc/op/state.json \"$@\"\\n' > inv && chmod +x inv && ansible -i ./inv all -m ping",
      ),
    )
    .action(
      run(async (file: string, _o: unknown, command: Command) =>
        (await commands()).inventoryCommand(file, globals(command), registry),
      ),
    );

  program
    .command("exec")
    .description(
      "run a command in a running instance: output streamed, its exit code op's (not a state change: no ledger)",
    )
    .argument("<name>", "the instance: NAME, or PROJECT/NAME")
    .argument("<command...>", "the command and its arguments, after --")
    .option("--cwd <dir>", "directory inside the instance to run in (absolute)")
    .addOption(
      new Option(
        "--env <name=value>",
        "environment variable for the command (repeatable)",
      ).argParser((pair: string, previous: string[] | undefined) => [...(previous ?? []), pair]),
    )
    .addOption(
      new Option("--user <uid>", "user id to run as (default 0)").argParser(
        integer("--user", 0, maxId),
      ),
    )
    .addOption(
      new Option("--group <gid>", "group id to run as (default 0)").argParser(
        integer("--group", 0, maxId),
      ),
    )
    .addOption(
      new Option(
        "--timeout <seconds>",
        "kill the command (SIGKILL) after this long and exit 124, as timeout(1) does",
      ).argParser(positive("--timeout", maxLockTimeout)),
    )
    .option("--any", "also in an instance op did not create")
    .option("-t, --tty", "in a pseudo terminal the size of op's (stdin must be a terminal)")
    // `op exec web1 ls -la`: commander takes -la for op's; the fix is the --.
    .showHelpAfterError(
      "(put -- before the command, so its options are not op's: op exec NAME -- CMD ARGS...)",
    )
    .addHelpText(
      "after",
      `${examples(
        "op exec web1 -- uname -a",
        "op exec web1 --cwd /srv --env MODE=test -- sh -c 'make check' ; echo $?",
        "tar -C site -c . | op exec web1 -- tar -C /var/www -x",
        "op exec web1 --timeout 60 -- ./long-job   # exit 124 if killed at 60 s",
        "op exec web1 --json -- sh -c 'exit 3'     # {\"exit_code\": 3, ...} on stdout",
        "op exec -t web1 -- sh",
      )}
The exit code is the command's own, which can equal one of op's (1 error, 64 bad command line...):
op's own errors are the lines starting "error:" on stderr; with --json, stdout carries only
{"exit_code": N, ...} for a command that ran, {"error": ...} when op failed, and the command's
output goes to stderr. Signals op gets (HUP, INT, TERM) are passed to the command.`,
    )
    .action(
      run(async (name: string, command: string[], _o: unknown, cmd: Command) =>
        (await import("./exec.js")).execCommand(name, command, globals(cmd), registry),
      ),
    );

  program
    .command("doctor")
    .description("list what this host lacks for each part of op")
    .addHelpText("after", examples("op doctor", "op doctor --json"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./doctor.js")).doctorCommand(globals(command), registry),
      ),
    );

  program
    .command("status")
    .description(
      "show the last run, last drift, last error, flapping resources and the ledger's head",
    )
    .addHelpText("after", examples("op status", "op status --json"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./status-command.js")).statusCommand(globals(command)),
      ),
    );

  // op file push / pull: copies in and out of an instance (src/cli/file.ts); no ledger record.
  const file = program
    .command("file")
    .description("copy files and directory trees into and out of an instance (changes no state)")
    .addHelpText(
      "after",
      examples("op file push ./app.conf ct1:/etc/app/", "op file pull ct1:/var/log/app.log ."),
    );
  const fileMode = (value: string): number => {
    if (!/^[0-7]{1,4}$/.test(value))
      throw new InvalidArgumentError("--mode must be octal permission bits, e.g. 0644 or 755");
    return Number.parseInt(value, 8);
  };
  const fileAny = "also work in an instance op did not create";
  const fileCommands = () => import("./file.js");
  file
    .command("push")
    .description(
      "copy local files (and with -r directories) into an instance, running or stopped, streamed",
    )
    .argument("<paths...>", "LOCAL... NAME:/PATH (NAME may be PROJECT/NAME)")
    .addOption(
      new Option(
        "--mode <octal>",
        "permission bits of the files (default: each file's own)",
      ).argParser(fileMode),
    )
    .addOption(
      new Option("--uid <uid>", "owner in the instance (default 0)").argParser(
        integer("--uid", 0, maxId),
      ),
    )
    .addOption(
      new Option("--gid <gid>", "group in the instance (default 0)").argParser(
        integer("--gid", 0, maxId),
      ),
    )
    .option("-r, --recursive", "copy directories with everything under them (symlinks as symlinks)")
    .option("-p, --create-dirs", "create the missing directories of NAME:/PATH")
    .option("--any", fileAny)
    .addHelpText(
      "after",
      examples(
        "op file push ./app.conf ct1:/etc/app/app.conf --mode 0600",
        "op file push -r ./site ct1:/srv/ -p",
        "op file push a.txt b.txt ct1:/root/",
        "op file push big.img web/ct1:/var/tmp/   # ct1 in project web",
      ),
    )
    .action(
      run(async (paths: string[], _o: unknown, command: Command) =>
        (await fileCommands()).filePushCommand(paths, globals(command), registry),
      ),
    );
  file
    .command("pull")
    .description("copy files (and with -r directories) out of an instance, streamed")
    .argument("<paths...>", "NAME:/PATH... LOCAL")
    .option("-r, --recursive", "copy directories with everything under them (symlinks as symlinks)")
    .option("--any", fileAny)
    .addHelpText(
      "after",
      examples(
        "op file pull ct1:/etc/hostname .",
        "op file pull -r ct1:/var/log/app ./logs/",
        "op file pull ct1:/a ct1:/b ./out/",
      ),
    )
    .action(
      run(async (paths: string[], _o: unknown, command: Command) =>
        (await fileCommands()).filePullCommand(paths, globals(command), registry),
      ),
    );

  const ledger = program
    .command("ledger")
    .description("read and audit the ledger of changes")
    .addHelpText(
      "after",
      examples(
        "op ledger log --limit 20",
        "op ledger verify",
        "op ledger checkpoint > /backup/op.checkpoint",
      ),
    );

  ledger
    .command("log")
    .description("list records, oldest first")
    .option("--plugin <name>", "only records of this plugin")
    .option("--since <when>", "only records from this date/time (ISO 8601) or age (30m, 12h, 7d)")
    .addOption(
      new Option("--limit <n>", "at most n records (the newest n)").argParser(
        integer("--limit", 1),
      ),
    )
    .addHelpText(
      "after",
      examples("op ledger log --since 1d", "op ledger log --plugin nftables --json"),
    )
    .action(
      run(async (_o: unknown, command: Command) =>
        (await commands()).ledgerLogCommand(globals(command)),
      ),
    );

  ledger
    .command("show")
    .description("print one record with its hashes")
    .argument("<seq>", "record number")
    .addHelpText("after", examples("op ledger show 1"))
    .action(
      run(async (seq: string, _o: unknown, command: Command) =>
        (await commands()).ledgerShowCommand(seq, globals(command)),
      ),
    );

  ledger
    .command("verify")
    .description("check the hash chain and the signed checkpoints; names the first bad record")
    .addOption(
      new Option(
        "--trusted <file>",
        "also check against a checkpoint saved elsewhere (catches truncation and rewrites)",
      ).argParser(path("--trusted")),
    )
    .addHelpText(
      "after",
      examples("op ledger verify", "op ledger verify --trusted /backup/op.checkpoint"),
    )
    .action(
      run(async (_o: unknown, command: Command) =>
        (await commands()).ledgerVerifyCommand(globals(command)),
      ),
    );

  ledger
    .command("export")
    .description("print a header line, then every record and checkpoint as a JSON line")
    .addHelpText("after", examples("op ledger export > ledger.jsonl"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await commands()).ledgerExportCommand(globals(command)),
      ),
    );

  ledger
    .command("checkpoint")
    .description("print the latest signed checkpoint, to keep somewhere else")
    .addHelpText("after", examples("op ledger checkpoint > /backup/op.checkpoint"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await commands()).ledgerCheckpointCommand(globals(command)),
      ),
    );

  ledger
    .command("repair")
    .description(
      "after damage only: keep the damaged ledger aside, untouched, and start a new one that records why",
    )
    .addHelpText("after", examples("op ledger verify || op ledger repair"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./ledger-commands.js")).ledgerRepairCommand(globals(command)),
      ),
    );

  ledger
    .command("rotate-key")
    .description(
      "replace the signing key: the new public key is recorded and signed with the old key",
    )
    .addHelpText("after", examples("op ledger rotate-key", "op ledger rotate-key --json"))
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./ledger-commands.js")).ledgerRotateKeyCommand(globals(command)),
      ),
    );

  // op ledger prune-images (src/cli/prune-images.ts): pre-image blobs of older runs go.
  ledger
    .command("prune-images")
    .description(
      "remove the pre-image blobs of all but the last N changing runs (and the run awaiting op confirm); those runs can no longer be undone",
    )
    .addOption(
      // At least 1: an apply --confirm arms its deadline just after its run ends and the lock
      // is released, so the newest run's pre-image must never be a prune's to take.
      new Option("--keep <n>", "how many of the newest changing runs stay undoable (at least 1)")
        .default(50)
        .argParser(integer("--keep", 1)),
    )
    .option("--dry-run", "only print what would be removed")
    .addOption(
      new Option("--lock-timeout <seconds>", "wait this long for another op apply")
        .default(0)
        .argParser(integer("--lock-timeout", 0, maxLockTimeout)),
    )
    .addHelpText(
      "after",
      examples("op ledger prune-images --keep 20", "op ledger prune-images --dry-run --json"),
    )
    .action(
      run(async (_o: unknown, command: Command) =>
        (await import("./prune-images.js")).pruneImagesCommand(globals(command)),
      ),
    );

  program
    .command("completion")
    .description("print the shell completion script for bash, zsh or fish")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(shells))
    .addHelpText(
      "after",
      examples(
        "op completion bash > /etc/bash_completion.d/op",
        "source <(op completion bash)",
        "op completion fish > ~/.config/fish/completions/op.fish",
      ),
    )
    .action(async (shell: Shell) => {
      // Made from this program as built, so a new command or option completes with no edit.
      process.stdout.write(
        completionScript(shell, program, {
          "--plugin": registry.manifests.map((manifest) => manifest.name),
        }),
      );
      setExit(0);
    });

  addContractOptions(program);
  return program;
}

/**
 * The machine contract's options of plan and apply (docs/json-output.md), added in one place:
 * plan files, terraform's detailed exit code, and `--events[=FILE]`. A bare `--events` reaches
 * commander as `--events=-` (src/cli/run.ts), so it never takes the state file after it.
 */
function addContractOptions(program: Command): void {
  const named = (name: string) => program.commands.find((command) => command.name() === name);
  const more = (...lines: string[]) =>
    `\nMachine-readable runs (docs/json-output.md):\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`;
  const events = () =>
    new Option(
      "--events [file]",
      "write the run's progress as JSON lines to FILE (--events=FILE), or alone to stdout instead of the usual output",
    ).argParser(path("--events"));
  named("plan")
    ?.addOption(
      new Option(
        "--out <planfile>",
        "also save the plan there: op apply PLANFILE applies exactly it, or refuses if the host moved",
      ).argParser(path("--out")),
    )
    .option("--detailed-exitcode", "exit 0 when there are no changes, 2 when there are, 1 on error")
    .addOption(events())
    .addHelpText(
      "after",
      more(
        "op plan state.json --detailed-exitcode; [ $? -eq 2 ] && echo changes",
        "op plan state.json --out plan.op && op apply plan.op   # exactly that plan, or refused",
        "op plan state.json --events   # JSON lines on stdout",
      ),
    );
  named("apply")
    ?.addOption(events())
    .addHelpText(
      "after",
      `${more("op apply state.json --events=progress.jsonl", "op apply plan.op   # a plan file from op plan --out")}FILE may be a plan file from op plan --out: applied exactly, or refused if the host moved.\n`,
    );
}
