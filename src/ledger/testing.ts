/**
 * Helpers for the ledger's tests: temporary directories, raw access to a ledger's LevelDB (to
 * tamper with it as an attacker would), and child processes that use the ledger from another
 * process (a second op run, a crash, another user).
 */
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Level } from "level";
import { Ledger } from "./ledger.js";
import type { LedgerDb } from "./verify.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
/** Node 24 from the project: it runs the TypeScript sources directly (type stripping). */
const projectNode = join(repoRoot, "node_modules/.bin/node");
const ledgerModule = pathToFileURL(fileURLToPath(new URL("./index.ts", import.meta.url))).href;

const created: string[] = [];

export async function makeTempDir(purpose: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `op-ledger-${purpose}-`));
  created.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Opens a (closed) ledger's database directly, runs `work`, closes it. */
export async function withRawDb<T>(dir: string, work: (db: LedgerDb) => Promise<T>): Promise<T> {
  const db: LedgerDb = new Level<string, Buffer>(dir, {
    keyEncoding: "utf8",
    valueEncoding: "buffer",
    createIfMissing: false,
  });
  await db.open();
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Maps the sources' ".js" import suffixes to the ".ts" files beside them. */
const resolveHook = `import { registerHooks } from "node:module";
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (error) {
      if (!specifier.startsWith(".") || !specifier.endsWith(".js")) throw error;
      return next(specifier.slice(0, -3) + ".ts", context);
    }
  },
});
`;

/**
 * Runs `body` (an ES module body with `Ledger` in scope, which may `print(value)` JSON lines)
 * in a separate Node process, optionally as another user.
 */
export async function runLedgerChild(
  body: string,
  options: { uid?: number; gid?: number } = {},
): Promise<ChildResult> {
  const dir = await makeTempDir("child");
  await chmod(dir, 0o755); // readable by the other user too
  const hook = join(dir, "hook.mjs");
  const script = join(dir, "child.mjs");
  await writeFile(hook, resolveHook, { mode: 0o644 });
  const prelude = `const { Ledger } = await import(${JSON.stringify(ledgerModule)});
const print = (value) => process.stdout.write(JSON.stringify(value) + "\\n");
`;
  await writeFile(script, `${prelude}${body}\n`, { mode: 0o644 });
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      projectNode,
      ["--no-warnings", "--import", pathToFileURL(hook).href, script],
      {
        cwd: dir,
        stdio: ["pipe", "pipe", "pipe"],
        ...(options.uid === undefined ? {} : { uid: options.uid }),
        ...(options.gid === undefined ? {} : { gid: options.gid }),
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    child.stdin.end();
  });
}

/** A temporary root with a private `keys` directory: the ledger's and its key's paths in it. */
export async function keySandbox(): Promise<{ root: string; dir: string; keyFile: string }> {
  const root = await makeTempDir("keys");
  const keys = join(root, "keys");
  await mkdir(keys, { mode: 0o700 });
  return { root, dir: join(root, "ledger"), keyFile: join(keys, "ledger.key") };
}

/** A ledger with one signed record, closed. */
export async function signedLedger(dir: string, keyFile: string): Promise<void> {
  const ledger = await Ledger.open(dir, { keyFile });
  await ledger.append({ run: "r", plugin: "p", action: "create", target: "t", status: "ok" });
  await ledger.checkpoint();
  await ledger.close();
}
