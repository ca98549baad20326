#!/usr/bin/env node
/**
 * The CLI edge: parses the command line, runs a command, and decides how errors are printed
 * and which exit code they map to. `op --version` is answered before anything else loads.
 */
import { enableCompileCache } from "node:module";
import { join } from "node:path";
import { version } from "../version.js";

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  process.stdout.write(`op ${version}\n`);
} else {
  // V8's code cache speeds every later start. It lives in op's own cache directory (root's),
  // never in the default under /tmp, where another user could plant code for root to load.
  enableCompileCache?.(join(process.env.OP_CACHE_DIR || "/var/cache/op", "node-compile-cache"));
  process.exitCode = await main(args);
}

async function main(argv: string[]): Promise<number> {
  const { buildProgram } = await import("./program.js");
  const { OpError, errorCodes } = await import("../errors.js");
  const { renderError } = await import("./output.js");
  const { CommanderError } = await import("commander");
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version requests exit 0; anything else commander rejects is a usage error.
      return error.exitCode === 0 ? 0 : errorCodes.usage;
    }
    const json = argv.includes("--json");
    if (json && error instanceof OpError) {
      process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
    } else {
      process.stderr.write(renderError(error));
    }
    return error instanceof OpError ? error.exitCode : 70;
  }
}
