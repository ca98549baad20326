/**
 * The image store's directory as files, for `op ledger prune-images` (src/cli/prune-images.ts):
 * what is stored, and removing one entry. Apart from blobs.ts so that the store's read and
 * write side stays the small interface the engine gets.
 */
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { OpError } from "../errors.js";

export { blobDirectory } from "./blobs.js";

const blobName = /^[0-9a-f]{64}$/;
const refName = /^([A-Za-z0-9_.-]{1,128})\.ref$/;

/** The blobs (by hash) and names (`name` → hash) in `dir`; other files are not the store's. */
export function listBlobStore(dir: string): { blobs: string[]; refs: Map<string, string> } {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { blobs: [], refs: new Map() };
    throw storeError(dir, "read", error);
  }
  const refs = new Map<string, string>();
  for (const file of files) {
    const name = refName.exec(file)?.[1];
    if (name !== undefined) refs.set(name, readFileSync(join(dir, file), "utf8").trim());
  }
  return { blobs: files.filter((f) => blobName.test(f)), refs };
}

/** Removes one blob or `.ref` of the store; one gone already is fine. */
export function removeStored(dir: string, file: string): void {
  if (!blobName.test(file) && !refName.test(file))
    throw new Error(`bug: ${file} is not an image store entry`);
  try {
    unlinkSync(join(dir, file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      throw storeError(dir, "remove from", error);
  }
}

function storeError(dir: string, what: string, error: unknown): OpError {
  return new OpError(
    "invalid-state",
    `cannot ${what} the image store ${dir}: ${(error as Error).message}`,
    {
      hint: "it is the directory beside the ledger where op keeps pre-images; check its owner and permissions",
    },
  );
}
